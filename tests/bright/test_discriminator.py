from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from knnlab.bright.discriminator import (
    ResNetDiscriminator,
    d_loss_nonsaturating,
    g_loss_nonsaturating,
    minibatch_stddev,
    r1_penalty,
)


def test_minibatch_stddev_against_numpy() -> None:
    x = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 4, 4, 4)
    a = x.numpy().reshape(4, 2, 3, 4, 4)  # sample i belongs to column i % 2
    std = np.sqrt(a.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))  # (2,)
    for i in range(8):
        np.testing.assert_allclose(out[i, 3].numpy(), std[i % 2], rtol=1e-12)
    torch.testing.assert_close(out[:, :3], x)


def test_discriminator_shapes_and_mbstd_sensitivity() -> None:
    torch.manual_seed(0)
    d = ResNetDiscriminator(32, channels=1, width=8)
    x = torch.rand(4, 1, 32, 32)
    assert d(x).shape == (4,)
    with pytest.raises(ValueError, match="power of two"):
        ResNetDiscriminator(28)


def test_nonsaturating_losses_by_formula() -> None:
    r, f = torch.tensor([0.3, -1.2]), torch.tensor([2.0, -0.5])
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    g = -(math.log(sig(2.0)) + math.log(sig(-0.5))) / 2
    dl = -(math.log(1 - sig(2.0)) + math.log(1 - sig(-0.5))) / 2
    dl += -(math.log(sig(0.3)) + math.log(sig(-1.2))) / 2
    assert g_loss_nonsaturating(f).item() == pytest.approx(g, rel=1e-6)
    assert d_loss_nonsaturating(r, f).item() == pytest.approx(dl, rel=1e-6)


def test_r1_of_a_linear_critic() -> None:
    w = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(1))

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * w).flatten(1).sum(1)

    x = torch.rand(5, 2, 3, 3)
    # ∇_x D = w for every sample: (γ/2)·‖w‖², times the lazy interval
    want = 4.0 / 2 * w.square().sum().item() * 16
    assert r1_penalty(Linear(), x, gamma=4.0, every=16).item() == pytest.approx(want, rel=1e-5)
