"""The ball test of knnlab.metrics._common against a float64 brute force, with the float32
product perturbed by as much as the worst-case rounding bound allows at d = 2048."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.metrics._common import ball_membership

U = 2.0**-24


def _data(d: int, eta: float, seed: int = 0):
    """Centres ``±a·e`` (mean 0) with radius ``a²``; points at squared distance ``a²(1 + eta)``
    from the first centre, off the centres' axis (so farther from the second)."""
    rng = np.random.default_rng(seed)
    e = np.ones(d) / np.sqrt(d)
    a = 3.0
    centers = np.stack([a * e, -a * e])
    u = rng.standard_normal((50, d))
    u -= (u @ e)[:, None] * e  # orthogonal to e
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    points = centers[0] + a * np.sqrt(1 + eta) * u
    p32 = points.astype(np.float32)
    c32 = centers.astype(np.float32)
    exact = ((p32.astype(np.float64)[:, None] - c32.astype(np.float64)[None]) ** 2).sum(-1)
    radii = np.full(2, a * a)
    return torch.from_numpy(p32), torch.from_numpy(c32), torch.from_numpy(radii), exact


@pytest.mark.parametrize("sign, eta", [(1.0, -1e-4), (-1.0, 1e-4)])
def test_decisions_survive_the_float32_error_bound(monkeypatch, sign, eta):
    """Higham's bound for ``|p|² + |c|² − 2 p·c`` in float32 is ``γ_{d+2} (‖p‖ + ‖c‖)²`` with
    ``γ_n = n u / (1 − n u)``; the product here errs by 0.99 d u (‖p‖ + ‖c‖)², pushing every
    value away from the truth. Points 1e-4 inside (outside) the radius must stay in (out)."""
    d = 2048
    points, centers, radii, exact = _data(d, eta)
    orig = torch.addmm

    def addmm_with_error(inp, m1, m2, *args, **kwargs):
        out = orig(inp, m1, m2, *args, **kwargs)
        pn = torch.linalg.vector_norm(m1.double(), dim=1)[:, None]
        cn = torch.linalg.vector_norm(m2.double(), dim=0)[None, :]
        return out + (sign * 0.99 * d * U * (pn + cn) ** 2).to(out.dtype)

    monkeypatch.setattr(torch, "addmm", addmm_with_error)
    got = ball_membership(points, centers, radii, count=True)
    want = (exact <= radii.numpy()[None, :]).sum(1)
    assert (want == (1 if eta < 0 else 0)).all()  # the data is as designed
    np.testing.assert_array_equal(got.numpy(), want)


def test_strict_membership_excludes_the_boundary():
    points = torch.tensor([[0.0, 1.0], [0.0, 0.5], [0.0, 2.0]])
    centers = torch.zeros(1, 2)
    radii = torch.ones(1, dtype=torch.float64)
    assert ball_membership(points, centers, radii).tolist() == [True, True, False]
    assert ball_membership(points, centers, radii, strict=True).tolist() == [False, True, False]
    assert ball_membership(points, centers, radii, count=True, strict=True).tolist() == [0, 1, 0]
