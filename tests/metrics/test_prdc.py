"""Precision/recall and density/coverage against brute-force numpy references (full float64
distance matrices by direct differences, written here from the papers' definitions), including
exact ties: duplicate points and samples exactly at a radius."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.metrics import density_coverage, prdc, precision_recall


def sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def radii(x: np.ndarray, k: int) -> np.ndarray:
    d = sqdist(x, x)
    np.fill_diagonal(d, np.inf)  # non-self neighbours (duplicates still count at distance 0)
    return np.sort(d, axis=1)[:, k - 1]


def ref_pr(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: membership in the union of k-NN balls, ``<=`` as in their
    reference code (kynkaat/improved-precision-and-recall-metric, ``distance_batch <= self.D``)."""
    d_fr = sqdist(fake, real)
    precision = np.mean((d_fr <= radii(real, k)[None, :]).any(1))
    recall = np.mean((d_fr.T <= radii(fake, k)[None, :]).any(1))
    return float(precision), float(recall)


def ref_dc(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, eqs. (3) and (4); strict ``<`` as in their reference code
    (clovaai/generative-evaluation-prdc, ``compute_prdc``: ``distance_real_fake < radii``)."""
    r = radii(real, k)
    inside = sqdist(real, fake) < r[:, None]  # (N real, M fake)
    density = inside.sum() / (k * fake.shape[0])
    coverage = inside.any(1).mean()
    return float(density), float(coverage)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_data_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((300, 24)).astype(np.float32)
    fake = (1.3 * rng.standard_normal((250, 24)) + 0.2).astype(np.float32)
    assert precision_recall(real, fake, k=3) == pytest.approx(ref_pr(real, fake, 3), abs=0)
    assert density_coverage(real, fake, k=5) == pytest.approx(ref_dc(real, fake, 5), abs=1e-15)
    got = prdc(torch.from_numpy(real), torch.from_numpy(fake), k_pr=3, k_dc=5)
    p, r = ref_pr(real, fake, 3)
    d, c = ref_dc(real, fake, 5)
    assert got == pytest.approx({"precision": p, "recall": r, "density": d, "coverage": c})


def test_ties_duplicates_and_exactly_at_radius() -> None:
    rng = np.random.default_rng(3)
    real = rng.standard_normal((200, 8)).astype(np.float32)
    real[50:60] = real[40]  # duplicates: radius 0 balls
    k = 3
    d = sqdist(real, real)
    np.fill_diagonal(d, np.inf)
    kth = np.argsort(d, axis=1, kind="stable")[:, k - 1]
    far = (5.0 + 3.0 * rng.standard_normal((60, 8))).astype(np.float32)
    # fakes equal to real points: each lies exactly on the boundary (d == radius) of the real
    # samples that have it as k-th neighbour, and at distance 0 from its twin
    fake = np.concatenate([real[kth[:80]], real[40:45], far]).astype(np.float32)
    want_p, want_r = ref_pr(real, fake, k)
    assert precision_recall(real, fake, k=k) == (want_p, want_r)
    assert density_coverage(real, fake, k=k) == pytest.approx(ref_dc(real, fake, k), abs=1e-15)
    # the boundary cases are really there: fakes exactly at a real sample's radius
    assert np.any(sqdist(fake, real) == radii(real, k)[None, :])


def test_integer_grid_with_many_ties() -> None:
    rng = np.random.default_rng(4)
    real = rng.integers(0, 4, size=(250, 3)).astype(np.float32)
    fake = rng.integers(0, 5, size=(220, 3)).astype(np.float32)
    for k in (1, 3, 5):
        assert precision_recall(real, fake, k=k) == ref_pr(real, fake, k)
        assert density_coverage(real, fake, k=k) == pytest.approx(ref_dc(real, fake, k), abs=1e-15)


def test_small_memory_budget_chunks() -> None:
    rng = np.random.default_rng(5)
    real = rng.standard_normal((700, 10)).astype(np.float32)
    fake = rng.standard_normal((650, 10)).astype(np.float32) * 1.1
    budget = 256 * 1024  # forces many blocks in both the search and the ball test
    assert precision_recall(real, fake, k=3, memory_budget=budget) == ref_pr(real, fake, 3)
    assert density_coverage(real, fake, k=5, memory_budget=budget) == pytest.approx(
        ref_dc(real, fake, 5), abs=1e-15
    )


def test_identical_sets_and_disjoint_sets() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, 5)).astype(np.float32)
    assert precision_recall(x, x) == (1.0, 1.0)
    assert density_coverage(x, x)[1] == 1.0
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)
    assert density_coverage(x, x + 100.0) == (0.0, 0.0)


def test_errors() -> None:
    x = np.zeros((10, 3), np.float32)
    with pytest.raises(InputError):
        precision_recall(x, np.zeros((10, 4), np.float32))
    with pytest.raises(InputError):
        precision_recall(x[:3], x, k=3)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        density_coverage(bad, x)


def test_tie_rules_differ_per_metric() -> None:
    """A fake sample exactly on a real ball's boundary counts for precision (``<=``) and not for
    density or coverage (``<``): one real pair at distance 1, one fake on both boundaries."""
    real = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [12.0, 0.0]], np.float32)
    fake = np.array([[0.0, 1.0], [30.0, 0.0]], np.float32)  # |f0 - r0| = 1 = r0's 1-NN radius
    p, _ = precision_recall(real, fake, k=1)
    d, c = density_coverage(real, fake, k=1)
    assert p == 0.5  # f0 is inside r0's closed ball
    assert (d, c) == (0.0, 0.0)  # but not in any open ball
    assert (d, c) == ref_dc(real, fake, 1)
