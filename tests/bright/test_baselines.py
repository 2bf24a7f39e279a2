from __future__ import annotations

import pytest
import torch

from knnlab.bright.autoencoder import bright_config
from knnlab.bright.baselines import BaselineAutoencoder, baseline_config, kl_divergence
from knnlab.errors import InputError


@pytest.mark.parametrize("kind", ["vq", "rq", "kl"])
def test_equal_code_size_and_shapes(kind) -> None:
    bc = bright_config("tiny")
    cfg = baseline_config(kind, bc)
    assert cfg.code_shape == bc.code_shape == (8, 8, 4)
    m = BaselineAutoencoder(cfg).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y, reg, code = m(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and reg.ndim == 0
    if kind == "kl":
        assert code.shape == (2, 4, 8, 8)
    else:
        assert code.shape == (2, 8, 8, 4) and code.dtype == torch.long
        assert code.min() >= 0 and code.max() < cfg.codebook_size


def test_kl_divergence_against_torch_distributions() -> None:
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    ref = torch.distributions.kl_divergence(q, p).flatten(1).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mean, logvar), ref)


def test_save_load_round_trip(tmp_path) -> None:
    m = BaselineAutoencoder(baseline_config("rq", bright_config("tiny"))).eval()
    m.save_pretrained(tmp_path / "rq")
    m2 = BaselineAutoencoder.from_pretrained(tmp_path / "rq")
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(m2(x)[0], m(x)[0])


def test_unknown_kind() -> None:
    with pytest.raises(InputError, match="--baseline 'pq'"):
        baseline_config("pq", bright_config("tiny"))
