from __future__ import annotations

import pytest
import torch

from knnlab.bright.autoencoder import BrightAutoencoder, BrightConfig, bright_config
from knnlab.errors import InputError


def _small(**kw) -> BrightConfig:
    return bright_config("tiny", n_levels=3, log2_hashmap_size=8, **kw)


def test_shapes_and_key_bounds() -> None:
    gen = torch.Generator().manual_seed(0)
    m = BrightAutoencoder(_small(), generator=gen).eval()
    x = torch.rand(3, 1, 28, 28, generator=gen)
    keys = m.encode(x)
    assert keys.shape == (3, 4, 8, 8) and m.config.code_shape == (8, 8, 4)
    assert keys.min() > 0 and keys.max() < 1
    feat, style = m.features(keys)
    assert feat.shape == (3, 4 * 16, 16, 16) and style.shape == (3, 64)
    y = m.decode(keys)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(m(x)[0], y)  # eval: deterministic, no noise


def test_training_noise_sigma_and_clip() -> None:
    m = BrightAutoencoder(_small()).train()
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    clean = m.encode(x, noise=False)
    noisy = m.encode(x, generator=torch.Generator().manual_seed(2))
    assert noisy.min() >= 0 and noisy.max() <= 1
    d = (noisy - clean)[(noisy > 0) & (noisy < 1)]
    assert d.std().item() == pytest.approx(1 / (4 * 16), rel=0.15)


def test_save_load_round_trip(tmp_path) -> None:
    m = BrightAutoencoder(_small()).eval()
    with torch.no_grad():
        for p in m.groups[0].grid.parameters():
            p.normal_()
    m.save_pretrained(tmp_path / "ae")
    m2 = BrightAutoencoder.from_pretrained(tmp_path / "ae")
    assert m2.config == m.config
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(m2(x)[0], m(x)[0], rtol=0, atol=0)


def test_gradients_reach_encoder_through_grid() -> None:
    m = BrightAutoencoder(_small()).train()
    with torch.no_grad():
        for g in m.groups:
            g.grid.params.normal_(generator=torch.Generator().manual_seed(4))
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    keys = m.encode(x, noise=False)
    keys.retain_grad()
    feat, style = m.features(keys)
    (feat.square().sum() + style.sum()).backward()
    assert keys.grad is not None and keys.grad.abs().sum() > 0  # only through the hash grids
    assert m.encoder.conv_out.weight.grad.abs().sum() > 0
    assert all(g.grid.params.grad.abs().sum() > 0 for g in m.groups)


def test_errors() -> None:
    with pytest.raises(InputError, match="config"):
        bright_config("ffhq1024")
    with pytest.raises(InputError, match="decoder output side"):
        BrightConfig(decoder_channels=(32,))
    m = BrightAutoencoder(_small())
    with pytest.raises(InputError, match=r"expected \(B, 1, 28, 28\)"):
        m.encode(torch.rand(1, 3, 28, 28))
    with pytest.raises(InputError, match="key codes"):
        m.decode(torch.rand(1, 4, 4, 4))


@pytest.mark.slow
def test_release_size_model_constructs() -> None:
    m = BrightAutoencoder(bright_config("ffhq256"))
    c = m.config
    assert c.code_shape == (64, 64, 4) and len(m.groups) == 4
    g = m.groups[0].grid
    assert g.cfg.n_levels == 16 and g.cfg.n_features_per_level == 4
    assert g.cfg.log2_hashmap_size == 18 and g.cfg.growth == pytest.approx((64 / 16) ** (1 / 15))
    keys = torch.rand(1, 4, 64, 64)
    feat, style = m.features(keys)
    assert feat.shape == (1, 512, 64, 64) and style.shape == (1, 512)
