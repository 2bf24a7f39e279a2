"""The all-vs-all candidate path (knnlab.knn.symmetric) against a float64 numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.knn import core as knn_core
from knnlab.knn import search, symmetric

TINY = 64 * 1024  # blocks of about 73 points


def reference(x: np.ndarray, k: int):
    """Brute force, self excluded: float64 differences rounded to float32, (distance, index)."""
    x64 = x.astype(np.float64)
    d = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1).astype(np.float32)
    np.fill_diagonal(d, np.inf)
    cols = np.broadcast_to(np.arange(x.shape[0]), d.shape)
    idx = np.lexsort((cols, d), axis=-1)[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.fixture
def calls(monkeypatch):
    """Count the calls of the symmetric candidate generator made by search()."""
    seen: list[int] = []
    orig = knn_core.symmetric_candidates

    def spy(x32, kk, budget):
        seen.append(x32.shape[0])
        return orig(x32, kk, budget)

    monkeypatch.setattr(knn_core, "symmetric_candidates", spy)
    return seen


def check(x, k, budget=None, **kw):
    d, i = search(x, x, k, exclude_self=True, backend="torch", memory_budget=budget, **kw)
    rd, ri = reference(np.asarray(x), k)
    np.testing.assert_array_equal(np.asarray(i), ri)
    np.testing.assert_array_equal(np.asarray(d), rd)


@pytest.mark.parametrize("n", [500, 511, 587])
def test_many_blocks_match_reference(calls, n):
    """A tiny budget: several blocks, N not a multiple of the block size."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 10)).astype(np.float32)
    assert symmetric.block_size(TINY) < n
    check(x, 5, TINY)
    assert calls == [n]


def test_ties_and_duplicates(calls):
    """Integer grid data (many equal distances) and exact duplicates spread over blocks."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(450, 4)).astype(np.float32)
    x[300:310] = x[7]  # duplicates of a point in the first block, in a later block
    check(x, 6, TINY)
    check(x, 6)  # one block
    assert len(calls) == 2


def test_k_close_to_n(calls):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 5)).astype(np.float32)
    x[40] = x[3]
    check(x, 55)  # kk = 58 < N - 1: one block, the symmetric path
    check(x, 59)  # every point is a candidate: the one-sided path
    assert calls == [60]
    y = rng.standard_normal((300, 6)).astype(np.float32)
    check(y, 50, TINY)  # 5 blocks of 60 points, kk + 1 = 54
    assert calls == [60, 300]


def test_too_large_k_for_the_blocks_falls_back(calls):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    assert not symmetric.usable(300, 80 + knn_core.CANDIDATE_MARGIN, TINY)
    check(x, 80, TINY)
    assert calls == []


def test_float64_offset_data(calls):
    """float64 far from the origin: the expansion cancels badly, the result stays exact."""
    rng = np.random.default_rng(4)
    x = 1000.0 + rng.standard_normal((250, 12))
    check(x, 4, TINY)
    check(torch.from_numpy(x), 4, TINY)
    assert len(calls) == 2


def test_dense_fallback(calls, monkeypatch):
    """With no room for sparse hits every column is reduced with topk; same result."""
    monkeypatch.setattr(symmetric, "_HIT_DIVISOR", 10**12)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(400, 5)).astype(np.float32)
    check(x, 7, TINY)
    y = rng.standard_normal((400, 5)).astype(np.float32)
    check(y, 7, TINY)
    assert len(calls) == 2


def test_batched_and_distinct_queries_use_one_sided(calls):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 80, 3)).astype(np.float32)
    search(x, x, 3, exclude_self=True, backend="torch")
    search(x[0], x[0], 3, backend="torch")
    assert calls == []


def test_candidates_bound_the_left_out_points():
    """The certificate's premise: every point outside a row's candidates is, in exact
    arithmetic, no closer than the largest kept value minus the expansion error."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((350, 16)).astype(np.float32)
    kk = 6
    vals, inds = symmetric.symmetric_candidates(torch.from_numpy(x), kk, TINY)
    vals, inds = vals.numpy().astype(np.float64), inds.numpy()
    x64 = x.astype(np.float64)
    true = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(true, np.inf)
    tol = 1e-4 * (1 + true[np.isfinite(true)].max())
    rows = np.arange(len(x))[:, None]
    np.testing.assert_allclose(vals, true[rows, inds], atol=tol, rtol=0)
    assert all(len(set(r)) == kk and i not in r for i, r in enumerate(inds.tolist()))
    left = true.copy()
    left[rows, inds] = np.inf
    np.fill_diagonal(left, np.inf)
    assert np.all(left.min(1) >= vals.max(1) - tol)
    # and the kept ones are the kk nearest
    np.testing.assert_array_equal(np.sort(inds, 1), np.sort(np.argsort(true, 1)[:, :kk], 1))


def test_auto_uses_symmetric_on_cpu_all_vs_all(calls):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 7)).astype(np.float32)
    d, i = search(x, x, 5, exclude_self=True)
    rd, ri = reference(x, 5)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)
    assert calls == [300]
    assert knn_core._pick_backend(torch.device("cpu"), 300, 300, 7, all_vs_all=True) == "torch"


def test_distinct_queries_of_the_same_shape_use_one_sided(calls):
    """exclude_self with different data of the same shape and self_indices = arange: not
    symmetric, row i drops point i."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((200, 5)).astype(np.float32)
    q = rng.standard_normal((200, 5)).astype(np.float32)
    d, i = search(q, x, 4, exclude_self=True, self_indices=np.arange(200), backend="torch")
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    full = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1).astype(np.float32)
    np.fill_diagonal(full, np.inf)
    ri = np.lexsort((np.broadcast_to(np.arange(200), full.shape), full), axis=-1)[:, :4]
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, np.take_along_axis(full, ri, 1))
    # equal copies: symmetric
    search(x, x.copy(), 4, exclude_self=True, self_indices=np.arange(200), backend="torch")
    assert calls == [200]


_PEAK_SCRIPT = r"""
import re, sys
import numpy as np
import torch
torch.set_num_threads(1)
from knnlab.knn import search

def status(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024

n, d, budget = 4000, 128, 64 * 2**20
rng = np.random.default_rng(0)
x = rng.standard_normal((n, d)).astype(np.float32)
# first block: a tight cluster at the origin, every point of it nearer to each later point than
# that point's own neighbours: every entry of the off-diagonal block passes the column threshold
x[: n // 2] *= 0.05
x = torch.from_numpy(x)
y = x[:300]
search(y, y, 5, exclude_self=True, backend="torch")  # lazy initialisation
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
search(x, x, 5, exclude_self=True, backend="torch", memory_budget=budget)
print(status("VmHWM") - before, budget)
"""


def test_peak_memory_stays_within_the_budget(tmp_path):
    """Peak RSS of a fresh process: the off-diagonal block of a clustered set is all hits."""
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    peak, budget = map(int, out.stdout.split())
    # output-sized arrays (N x (k + margin) values, indices, re-ranking keys) and allocator slack
    outputs = 4000 * 8 * (4 + 8 + 8 + 8) + 4 * 2**20
    assert peak <= budget + outputs, f"peak {peak / 2**20:.1f} MiB, budget {budget / 2**20:.0f} MiB"
