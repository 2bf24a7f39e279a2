"""N³Net-real / DnCNN-real: presets, shapes, the image-only residual, save/load; Gaussian N³Net kept."""

from __future__ import annotations

import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3 import DnCNN, N3Net
from knnlab.n3.denoise import load_model
from knnlab.n3.real.models import N3NET_REAL_PRESETS, dncnn_real_config, n3net_real_config
from knnlab.n3.real.training import build_real_model, identity_init_


def test_presets_are_the_stated_sizes() -> None:
    rel = n3net_real_config("released")
    got = (rel.features, rel.stage_depth, rel.intermediate_channels, rel.k, rel.in_channels)
    assert got == (128, 9, 32, 3, 3)
    code = n3net_real_config("code-default")
    assert (code.features, code.stage_depth, code.intermediate_channels, code.k) == (64, 6, 8, 7)
    assert set(N3NET_REAL_PRESETS) == {"released", "code-default", "cpu"}
    with pytest.raises(InputError, match="--preset 'big'"):
        n3net_real_config("big")
    d = dncnn_real_config("cpu")
    c = n3net_real_config("cpu")
    assert (d.in_channels, d.out_channels, d.depth) == (3, 1, c.num_stages * c.stage_depth)


@pytest.mark.parametrize("kind", ["n3net", "dncnn"])
def test_shapes_and_save_load(kind: str, tmp_path) -> None:
    net = build_real_model(kind).eval()
    x = torch.rand(2, 3, 80, 84, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, 80, 84)
    net.save_pretrained(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert type(back) is type(net)
    with torch.no_grad():
        torch.testing.assert_close(back(x), y, rtol=0, atol=0)


def test_first_stage_carries_only_the_image_channel() -> None:
    # with every tail convolution zeroed, N3Net's stage 0 outputs [noisy, 0, ...]: the a and b maps
    # are not added (released: nplanes_residual = 1)
    net = N3Net(n3net_real_config("cpu")).eval()
    stage = net.stages[0]
    with torch.no_grad():
        stage.tail.weight.zero_()
        stage.tail.bias.zero_()
        x = torch.rand(1, 3, 80, 80)
        out = stage(x)
    assert torch.equal(out[:, 0], x[:, 0])
    assert float(out[:, 1:].abs().max()) == 0.0


def test_identity_init() -> None:
    for kind in ("n3net", "dncnn"):
        net = identity_init_(build_real_model(kind)).eval()
        x = torch.rand(1, 3, 80, 80)
        with torch.no_grad():
            assert torch.equal(net(x), x[:, :1])


def test_gaussian_models_are_unchanged() -> None:
    # a default (gray) N3Net and DnCNN keep residual channels min(in, out) = 1, as before
    net = N3Net()
    assert net.stages[0].config.residual_channels == 1
    assert all(s.config.residual_channels is None for s in net.stages[1:])
    assert DnCNN().config.residual_channels is None


def test_wrong_input_channels() -> None:
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        N3Net(n3net_real_config("cpu"))(torch.rand(1, 1, 80, 80))
    with pytest.raises(ValueError, match="residual_channels=2"):
        DnCNN(in_channels=3, out_channels=1, residual_channels=2)
