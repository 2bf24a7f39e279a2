"""k-occurrence and hubness statistics against independent references: brute-force numpy kNN
(float64, direct differences, stable sort = ties by lower index) and the scikit-hubness formulas
written out here (pairwise Gini, Robin Hood, hub occurrence with hubs >= 2k, scipy.stats.skew)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from knnlab.errors import InputError
from knnlab.hubness import hubness_stats, k_occurrence


def brute_k_occurrence(x: np.ndarray, k: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.bincount(nn.ravel(), minlength=len(x))


def ref_stats(kocc: np.ndarray, k: int) -> dict[str, float]:
    v = kocc.astype(np.float64)
    n = v.size
    gini = np.abs(v[:, None] - v[None, :]).sum() / (2 * n * v.sum())
    robinhood = 0.5 * np.abs(v - v.mean()).sum() / v.sum()
    hubs = v >= 2 * k
    return {
        "k_skewness": scipy.stats.skew(v),
        "gini": gini,
        "robinhood": robinhood,
        "antihub_occurrence": np.mean(v == 0),
        "hub_occurrence": v[hubs].sum() / k / n,
        "groupie_ratio": v.max() / n / k,
        "atkinson": 1 - np.mean(v**0.5) ** 2 / v.mean(),
    }


@pytest.mark.parametrize("k", [1, 5, 10])
def test_k_occurrence_matches_brute_force(k: int) -> None:
    rng = np.random.default_rng(k)
    x = rng.standard_normal((400, 32)).astype(np.float32)
    got = k_occurrence(x, k)
    assert got.dtype == np.int64 and got.shape == (400,)
    assert got.sum() == 400 * k
    np.testing.assert_array_equal(got, brute_k_occurrence(x, k))


def test_k_occurrence_ties_and_torch_input() -> None:
    rng = np.random.default_rng(0)
    # small integer grid: many exactly equal distances and duplicate points
    x = rng.integers(0, 3, size=(300, 3)).astype(np.float32)
    np.testing.assert_array_equal(k_occurrence(torch.from_numpy(x), 4), brute_k_occurrence(x, 4))


def test_k_occurrence_small_memory_budget() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    np.testing.assert_array_equal(
        k_occurrence(x, 5, memory_budget=64 * 1024), brute_k_occurrence(x, 5)
    )


def test_k_occurrence_approximate_runs() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    approx = k_occurrence(x, 5, approximate=True)
    assert approx.shape == (3000,) and approx.dtype == np.int64
    assert approx.sum() <= 3000 * 5
    exact = k_occurrence(x, 5)
    assert scipy.stats.spearmanr(approx, exact).statistic > 0.8


@pytest.mark.parametrize("k", [3, 5])
def test_hubness_stats_match_reference(k: int) -> None:
    rng = np.random.default_rng(10 + k)
    x = rng.standard_normal((600, 64)).astype(np.float32)  # high d: real hubness
    kocc = brute_k_occurrence(x, k)
    ref = ref_stats(kocc, k)
    for got in (hubness_stats(kocc, k), hubness_stats(x, k)):
        for key, val in ref.items():
            assert got[key] == pytest.approx(val, rel=1e-10, abs=1e-12), key
        assert got["n_hubs"] == int(np.sum(kocc >= 2 * k))
        assert got["n_antihubs"] == int(np.sum(kocc == 0))
        assert got["max_k_occurrence"] == kocc.max()
    assert ref["k_skewness"] > 0.5  # hubness appears in 64-d Gaussian data


def test_hubness_stats_hand_example() -> None:
    kocc = np.array([0, 0, 1, 2, 12])  # n = 5, k = 3, sum = 15 = n k
    s = hubness_stats(kocc, 3)
    assert s["antihub_occurrence"] == pytest.approx(2 / 5)
    assert s["hub_occurrence"] == pytest.approx(12 / 15)  # 12 >= 2k = 6
    assert s["robinhood"] == pytest.approx(0.5 * (3 + 3 + 2 + 1 + 9) / 15)
    assert s["gini"] == pytest.approx(ref_stats(kocc, 3)["gini"])


def test_errors() -> None:
    with pytest.raises(InputError):
        k_occurrence(np.zeros((5, 2), np.float32), 5)
    with pytest.raises(InputError):
        k_occurrence(np.zeros((5,), np.float32), 1)
    with pytest.raises(InputError):
        hubness_stats(np.array([1, 2]), 0)
    with pytest.raises(InputError):
        hubness_stats(np.array([-1, 2]), 1)
