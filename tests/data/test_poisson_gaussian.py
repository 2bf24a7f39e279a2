"""add_poisson_gaussian_noise: moments against a·x + b, clipping, seeding, broadcasting, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from knnlab.data import add_poisson_gaussian_noise
from knnlab.errors import InputError

LEVELS = (0.1, 0.4, 0.7, 0.95)
N = 200_000  # samples per level


@pytest.mark.parametrize(("a", "b"), [(0.01, 1e-4), (1e-3, 1e-5), (0.0, 4e-4), (0.05, 0.0)])
def test_mean_and_variance_match_the_noise_level_function(a: float, b: float) -> None:
    # Unclipped: the sample mean is x and the sample variance a·x + b. Tolerance: 5 standard errors
    # (SE of the mean sqrt(v/N); SE of the variance v·sqrt(2/(N-1)) for Gaussian samples), i.e. a
    # false failure rate below 1e-6 per check.
    x = torch.tensor(LEVELS, dtype=torch.float64).repeat_interleave(N).reshape(len(LEVELS), 1, N, 1)
    y = add_poisson_gaussian_noise(x, a, b, generator=torch.Generator().manual_seed(1), clip=False)
    for i, level in enumerate(LEVELS):
        s = y[i].flatten()
        v = a * level + b
        assert abs(float(s.mean()) - level) < 5 * math.sqrt(v / N)
        assert abs(float(s.var()) - v) < 5 * v * math.sqrt(2 / (N - 1))


def test_clipping_keeps_values_in_range_and_matches_censored_moments() -> None:
    # Clipped noise is a censored Gaussian; its mean has a closed form (scipy) to compare with.
    from scipy.stats import norm

    x = torch.full((1, 1, 400, 500), 0.03, dtype=torch.float64)
    a, b = 0.01, 1e-4
    y = add_poisson_gaussian_noise(x, a, b, generator=torch.Generator().manual_seed(2))
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    s = math.sqrt(a * 0.03 + b)
    al = (0.0 - 0.03) / s  # lower bound in standard units; the upper one (1) is 55 σ away
    expected = 0.03 * (1 - norm.cdf(al)) + s * norm.pdf(al)  # E[max(X, 0)], X ~ N(0.03, s²)
    assert abs(float(y.mean()) - expected) < 5 * s / math.sqrt(y.numel())
    assert float((y == 0).double().mean()) == pytest.approx(norm.cdf(al), abs=0.005)


def test_seeded_and_per_image_levels() -> None:
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    a = torch.tensor([0.0, 0.01, 0.1]).view(3, 1, 1, 1)
    b = torch.tensor([0.0, 1e-4, 1e-3]).view(3, 1, 1, 1)
    y1 = add_poisson_gaussian_noise(x, a, b, generator=torch.Generator().manual_seed(5))
    y2 = add_poisson_gaussian_noise(x, a, b, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y1, y2)
    assert torch.equal(y1[0], x[0])  # a = b = 0: no noise
    assert not torch.equal(y1[1], x[1])
    # the same draw as the obvious formula with the same generator state
    n = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    ref = (x + (a * x + b).sqrt() * n).clamp(0, 1)
    torch.testing.assert_close(y1, ref)


@pytest.mark.parametrize(
    ("x", "a", "b", "match"),
    [
        (torch.zeros(1, 4, 4, dtype=torch.uint8), 0.01, 1e-4, "floating-point"),
        (torch.zeros(1, 4, 4), -0.01, 1e-4, "a=-0.01"),
        (torch.zeros(1, 4, 4), 0.01, float("nan"), "b=nan"),
        (torch.zeros(2, 1, 4, 4), torch.ones(3, 1, 1, 1), 0.0, "broadcast"),
    ],
)
def test_bad_inputs(x, a, b, match: str) -> None:
    with pytest.raises(InputError, match=match):
        add_poisson_gaussian_noise(x, a, b)
