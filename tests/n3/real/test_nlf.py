"""The noise-level-function estimator recovers (a, b) of synthetic Poisson–Gaussian noise.

Stated error (asserted here): on a smooth image covering intensities 0.05–0.95 (a ramp, 512×512), the
estimated a is within 8% of the true one and the estimated σ(x) = sqrt(a·x + b) within 8% of the
true one for every x in [0.1, 0.9], at scale 1 and at scale 2. Over textured natural images the
error is larger (texture reads as noise); ``test_natural_image`` states a looser bound.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.data import add_poisson_gaussian_noise
from knnlab.errors import InputError
from knnlab.n3.real.nlf import estimate_nlf, estimate_nlf_channels

XS = np.linspace(0.1, 0.9, 9)


def _ramp(h: int = 512, w: int = 512) -> torch.Tensor:
    xx = torch.linspace(0.0, 1.0, w, dtype=torch.float64).expand(h, w)
    return (0.05 + 0.9 * xx)[None]


def _true_sigma(a: float, b: float) -> np.ndarray:
    return np.sqrt(a * XS + b)


@pytest.mark.parametrize(("a", "b"), [(1e-2, 1e-4), (1e-3, 1e-5), (1e-4, 1e-6), (3e-3, 3e-4)])
@pytest.mark.parametrize("scale", [1, 2])
def test_recovers_a_and_sigma_on_a_smooth_image(a: float, b: float, scale: int) -> None:
    y = add_poisson_gaussian_noise(_ramp(), a, b, generator=torch.Generator().manual_seed(3))
    est = estimate_nlf(y, scale=scale)
    assert est.a == pytest.approx(a, rel=0.08)
    rel = np.abs(est.sigma(XS) / _true_sigma(a, b) - 1.0)
    assert rel.max() < 0.08, rel


def test_gaussian_noise_gives_b_only() -> None:
    # a = 0: homoscedastic noise of σ = 10/255; the fit should put it all in b
    sigma = 10 / 255
    y = add_poisson_gaussian_noise(
        _ramp(), 0.0, sigma**2, generator=torch.Generator().manual_seed(4)
    )
    est = estimate_nlf(y)
    assert est.a < 0.1 * sigma**2  # a·x stays below 10% of the variance on [0, 1]
    assert np.sqrt(est.b) == pytest.approx(sigma, rel=0.05)


def test_colour_channels_are_estimated_separately() -> None:
    x = _ramp(256, 256).expand(3, 256, 256).contiguous()
    levels = [(1e-2, 1e-4), (1e-3, 1e-5), (3e-3, 3e-4)]
    y = torch.cat(
        [
            add_poisson_gaussian_noise(
                x[c : c + 1], *levels[c], generator=torch.Generator().manual_seed(c)
            )
            for c in range(3)
        ]
    )
    for est, (a, b) in zip(estimate_nlf_channels(y), levels, strict=True):
        assert np.abs(est.sigma(XS) / _true_sigma(a, b) - 1).max() < 0.12


def test_natural_image(shared_datasets) -> None:
    # texture inflates the estimate; on this BSD68 image σ(0.5) comes out within 25% at a = 0.01
    from knnlab.data import read_image

    clean = read_image(shared_datasets / "BSD68" / "test003.png", channels=1).double()
    a, b = 0.01, 1e-4
    y = add_poisson_gaussian_noise(clean, a, b, generator=torch.Generator().manual_seed(0))
    est = estimate_nlf(y)
    assert float(est.sigma(0.5)) == pytest.approx(float(np.sqrt(a * 0.5 + b)), rel=0.25)


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (torch.zeros(3, 64, 64), {}, "one gray image"),
        (torch.zeros(1, 40, 40), {}, "blocks"),
        (torch.full((1, 128, 128), float("nan")), {}, "NaN"),
        (torch.zeros(1, 128, 128), {"block": 5}, "block=5"),
        (torch.zeros(1, 128, 128), {"quantile": 1.5}, "quantile=1.5"),
        (torch.zeros(1, 128, 128), {"scale": 0}, "scale=0"),
    ],
)
def test_bad_inputs(image: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        estimate_nlf(image, **kwargs)
