"""R1 against independent computations: a closed form and a per-sample Jacobian in float64."""

from __future__ import annotations

import torch
from torch import nn

from knnlab.train import R1Penalty, r1_penalty


def test_r1_of_a_linear_discriminator_is_half_gamma_norm_w_squared() -> None:
    d = nn.Linear(5, 1).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    r1 = r1_penalty(d, x, gamma=3.0)
    w = d.weight.detach()[0]
    torch.testing.assert_close(r1, 1.5 * w.pow(2).sum())
    # differentiable in D's weights (double backward): d/dw (gamma/2 |w|^2) = gamma w
    (g,) = torch.autograd.grad(r1, d.weight)
    torch.testing.assert_close(g[0], 3.0 * w)


def test_r1_matches_a_per_sample_jacobian_of_a_nonlinear_discriminator() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 8), nn.Softplus(), nn.Linear(8, 1))
    d = d.double()
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    ref = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: d(v[None])[0, 0], xi)
        ref.append(jac.pow(2).sum())
    expected = 0.5 * 10.0 * torch.stack(ref).mean()
    torch.testing.assert_close(r1_penalty(d, x, 10.0), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(R1Penalty(10.0)(d, x), expected, rtol=1e-12, atol=1e-12)
    # the real batch itself gets no gradient
    assert x.grad is None and not x.requires_grad
