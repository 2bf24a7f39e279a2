"""FID against the scipy.linalg.sqrtm formula (pytorch-fid's), statistics against numpy, KID
against a numpy transcription of stylegan2-ada's kernel_inception_distance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from knnlab.errors import InputError
from knnlab.metrics import feature_statistics, fid, frechet_distance, kid


def ref_fid(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def ref_kid(real: np.ndarray, fake: np.ndarray, subsets: int, size: int, seed: int) -> float:
    real = np.asarray(real, np.float64)
    gen = np.asarray(fake, np.float64)
    n = real.shape[1]
    m = min(real.shape[0], gen.shape[0], size)
    rng = np.random.default_rng(seed)
    t = 0.0
    for _ in range(subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / subsets / m)


def test_feature_statistics_match_numpy() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5000, 16)) * 3 + 1000.0).astype(np.float32)  # large offset
    mu, sigma = feature_statistics(torch.from_numpy(x))
    assert mu.dtype == np.float64 and sigma.shape == (16, 16)
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(
        sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-9
    )
    _, sigma2 = feature_statistics(x, chunk_rows=333)
    np.testing.assert_allclose(sigma2, sigma, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", [8, 64])
def test_fid_matches_scipy_sqrtm(d: int) -> None:
    rng = np.random.default_rng(d)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    x = rng.standard_normal((2000, d)).astype(np.float32)
    y = (rng.standard_normal((1500, d)) @ a + 0.3).astype(np.float32)
    want = ref_fid(x, y)
    assert fid(x, y) == pytest.approx(want, rel=1e-7)
    assert fid(feature_statistics(x), feature_statistics(y)) == pytest.approx(want, rel=1e-7)


def test_frechet_distance_closed_form() -> None:
    d = 10
    mu2 = np.full(d, 0.5)
    # N(0, I) vs N(mu2, s^2 I): |mu2|^2 + d (1 - s)^2
    assert frechet_distance(np.zeros(d), np.eye(d), mu2, 4.0 * np.eye(d)) == pytest.approx(
        d * 0.25 + d * 1.0
    )
    # non-commuting covariances: compare with sqrtm
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, d, d))
    s1, s2 = a @ a.T, b @ b.T
    want = np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(scipy.linalg.sqrtm(s1 @ s2)))
    assert frechet_distance(np.zeros(d), s1, np.zeros(d), s2) == pytest.approx(want, rel=1e-9)


def test_fid_singular_covariances_are_robust() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 50)).astype(np.float32)  # rank-deficient covariance
    v = fid(x, x)
    assert np.isfinite(v) and 0.0 <= v < 1e-6
    w = fid(x, x + 1.0)
    assert w == pytest.approx(50.0, rel=1e-6)


def test_kid_matches_stylegan2_ada_formula() -> None:
    rng = np.random.default_rng(3)
    real = rng.standard_normal((300, 12)).astype(np.float32)
    fake = (rng.standard_normal((250, 12)) * 1.2 + 0.1).astype(np.float32)
    assert kid(real, fake, subsets=5, subset_size=100, seed=9) == pytest.approx(
        ref_kid(real, fake, 5, 100, 9), rel=1e-10
    )
    # one subset of all rows: the plain unbiased MMD^2, independent of the draw
    assert kid(real[:250], fake, subsets=1, subset_size=10_000) == pytest.approx(
        ref_kid(real[:250], fake, 1, 10_000, 123), rel=1e-10
    )
    mean, std = kid(real, fake, subsets=4, subset_size=50, return_std=True)
    assert std >= 0 and np.isfinite(mean)
    a, b = rng.standard_normal((2, 1000, 12))
    same = kid(a, b, subsets=1, subset_size=1000)
    assert abs(same) < 0.005  # unbiased: ~0 for equal distributions (vs ~0.05 above)


def test_errors() -> None:
    with pytest.raises(InputError):
        fid(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(InputError):
        kid(np.zeros((10, 3)), np.zeros((10, 3)), subsets=0)
    with pytest.raises(InputError):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
