"""knnlab.knn.search against a brute-force float64 numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.knn import EXACT_BACKENDS, search
from knnlab.knn import core as knn_core

EXACT = list(EXACT_BACKENDS)


def reference(q: np.ndarray, x: np.ndarray, k: int, exclude_self: bool = False):
    """Brute force: float64 direct differences, rounded to float32, sorted by (distance, index)."""
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    d = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1).astype(np.float32)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    cols = np.broadcast_to(np.arange(x.shape[0]), d.shape)
    idx = np.lexsort((cols, d), axis=-1)[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def check_with_ties(dist, idx, ref_d, ref_i, q, x, rtol=1e-6):
    """faiss-style check (check_ref_knn_with_draws): distances agree; indices may differ only
    where the reference distance is tied, and then must have the same distance."""
    dist, idx = np.asarray(dist), np.asarray(idx)
    np.testing.assert_allclose(dist, ref_d, rtol=rtol, atol=1e-6)
    assert np.all(np.diff(dist, axis=1) >= 0)
    for r in np.nonzero((idx != ref_i).any(1))[0]:
        true_d = ((x[idx[r]].astype(np.float64) - q[r].astype(np.float64)) ** 2).sum(-1)
        np.testing.assert_allclose(true_d, ref_d[r], rtol=rtol, atol=1e-6)
        assert len(set(idx[r].tolist())) == idx.shape[1]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((700, 24)).astype(np.float32)
    q = rng.standard_normal((130, 24)).astype(np.float32)
    return q, x


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("exclude_self", [False, True])
def test_matches_reference(data, backend, exclude_self):
    q, x = data
    if exclude_self:
        q = x
    d, i = search(q, x, 7, exclude_self=exclude_self, backend=backend)
    assert isinstance(d, np.ndarray) and d.dtype == np.float32 and i.dtype == np.int64
    assert d.shape == i.shape == (q.shape[0], 7)
    rd, ri = reference(q, x, 7, exclude_self)
    check_with_ties(d, i, rd, ri, q, x)
    # on random continuous data there are no ties: exact equality
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("exclude_self", [False, True])
def test_batched_torch(backend, exclude_self):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 300, 16, generator=g)
    q = x if exclude_self else torch.randn(3, 40, 16, generator=g)
    d, i = search(q, x, 5, exclude_self=exclude_self, backend=backend)
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float32 and i.dtype == torch.int64
    assert d.shape == (3, q.shape[1], 5)
    for b in range(3):
        rd, ri = reference(q[b].numpy(), x[b].numpy(), 5, exclude_self)
        np.testing.assert_array_equal(i[b].numpy(), ri)
        np.testing.assert_array_equal(d[b].numpy(), rd)


@pytest.mark.parametrize("backend", EXACT)
def test_ties_and_duplicates_lower_index_first(backend):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(400, 6)).astype(np.float32)  # many exact duplicates and ties
    x[::5] = 0.0
    d, i = search(x, x, 12, exclude_self=True, backend=backend)
    rd, ri = reference(x, x, 12, exclude_self=True)
    np.testing.assert_array_equal(d, rd)
    np.testing.assert_array_equal(i, ri)  # ties broken by the lower index, exactly
    # duplicates are neighbours of each other (self dropped by index, not by distance)
    assert d[0, 0] == 0.0 and i[0, 0] == 5 and 0 not in i[0]


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_tiny_memory_budget_same_result(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((800, 16)).astype(np.float32)
    x[400:460] = x[0]  # duplicates across chunk boundaries
    ref = search(x, x, 9, exclude_self=True, backend=backend)
    small = search(x, x, 9, exclude_self=True, backend=backend, memory_budget=64 * 1024)
    np.testing.assert_array_equal(ref[0], small[0])
    np.testing.assert_array_equal(ref[1], small[1])
    _rd, ri = reference(x, x, 9, exclude_self=True)
    np.testing.assert_array_equal(small[1], ri)


def test_torch_chunks_cover_database_blocks(monkeypatch):
    """Force database chunking in the torch backend (several (query, database) blocks)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1200, 8)).astype(np.float32)
    d, i = search(x, x, 4, exclude_self=True, backend="torch", memory_budget=64 * 1024)
    rd, ri = reference(x, x, 4, exclude_self=True)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)


def test_float64_and_offset_data():
    """float64 input far from the origin: the expansion cancels badly, the result stays exact."""
    rng = np.random.default_rng(5)
    x = 1000.0 + rng.standard_normal((500, 20))
    d, i = search(x, x, 5, exclude_self=True)
    rd, ri = reference(x, x, 5, exclude_self=True)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)


def test_every_row_fallback_matches(monkeypatch):
    """With no candidate margin and an inflated error bound, every row goes through the certified
    rescan; the result must not change."""
    monkeypatch.setattr(knn_core, "CANDIDATE_MARGIN", 0)
    monkeypatch.setattr(knn_core, "_U32", 2.0**-8)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((600, 12)).astype(np.float32)
    x[100:130] = x[5]
    d, i = search(x, x, 6, exclude_self=True, backend="torch", memory_budget=2**20)
    rd, ri = reference(x, x, 6, exclude_self=True)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)


def test_k_equals_n_and_small():
    x = np.random.default_rng(7).standard_normal((10, 3)).astype(np.float32)
    _d, i = search(x, x, 10)
    assert sorted(i[0].tolist()) == list(range(10))
    _d, i = search(x, x, 9, exclude_self=True)
    assert all(r not in i[r] for r in range(10))


def test_same_shape_distinct_object_exclude_self_is_refused():
    """Nothing says which database row a different tensor's query i is: refused, not guessed."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g)
    with pytest.raises(InputError, match="self_indices"):
        search(x, x.clone(), 3, exclude_self=True)
    with pytest.raises(InputError, match="self_indices"):
        search(torch.randn(50, 4, generator=g), x, 3, exclude_self=True)
    with pytest.raises(InputError, match="self_indices"):
        search(x.numpy(), x.numpy().copy(), 3, exclude_self=True)
    # a copy with its rows named gives the same as the database itself
    d1, i1 = search(x, x.clone(), 3, exclude_self=True, self_indices=torch.arange(50))
    d2, i2 = search(x, x, 3, exclude_self=True)
    assert torch.equal(i1, i2) and torch.equal(d1, d2)


@pytest.mark.parametrize("backend", [*EXACT, "faiss-ivf"])
def test_self_indices_for_a_query_subset(backend):
    """Queries taken from rows ``rows`` of the database: each drops its own row, keeps the rest."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    rows = rng.choice(300, 40, replace=False)
    x[rows[0] + 1 if rows[0] < 299 else rows[0] - 1] = x[rows[0]]  # a duplicate must stay
    q = x[rows].copy()
    kw = {"nlist": 4, "nprobe": 4} if backend == "faiss-ivf" else {}
    d, i = search(q, x, 6, exclude_self=True, self_indices=rows, backend=backend, **kw)
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    full = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1).astype(np.float32)
    full[np.arange(40), rows] = np.inf
    ri = np.lexsort((np.broadcast_to(np.arange(300), full.shape), full), axis=-1)[:, :6]
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, np.take_along_axis(full, ri, 1))
    assert d[0, 0] == 0.0  # the duplicate of the first query's row


def test_self_indices_batched():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 60, 5, generator=g)
    rows = torch.stack([torch.randperm(60, generator=g)[:10] for _ in range(2)])
    q = torch.stack([x[b, rows[b]] for b in range(2)])
    _d, i = search(q, x, 4, exclude_self=True, self_indices=rows, backend="torch")
    for b in range(2):
        full = ((q[b, :, None].double() - x[b, None].double()) ** 2).sum(-1).float().numpy()
        full[np.arange(10), rows[b].numpy()] = np.inf
        ri = np.lexsort((np.broadcast_to(np.arange(60), full.shape), full), axis=-1)[:, :4]
        np.testing.assert_array_equal(i[b].numpy(), ri)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros(5), np.zeros((4, 5)), 1), {}, "shape"),
        ((np.zeros((2, 5)), np.zeros((4, 3)), 1), {}, "dimension mismatch"),
        ((np.zeros((2, 2, 5)), np.zeros((3, 4, 5)), 1), {}, "batch sizes"),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 0), {}, "k=0"),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 5), {}, "k=5"),
        ((np.zeros((4, 5)), np.zeros((4, 5)), 4), {"exclude_self": True}, "exclude_self"),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 1), {"exclude_self": True}, "self_indices="),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 1), {"self_indices": [0, 1]}, "only used with"),
        (
            (np.zeros((2, 5)), np.zeros((4, 5)), 1),
            {"exclude_self": True, "self_indices": [0, 1, 2]},
            r"shape \(3,\); expected \(2,\)",
        ),
        (
            (np.zeros((2, 5)), np.zeros((4, 5)), 1),
            {"exclude_self": True, "self_indices": [0, 4]},
            r"0\.\.3",
        ),
        (
            (np.zeros((2, 5)), np.zeros((4, 5)), 1),
            {"exclude_self": True, "self_indices": [0.0, 1.0]},
            "integer",
        ),
        ((np.full((2, 5), np.nan), np.zeros((4, 5)), 1), {}, "NaN"),
        ((np.zeros((2, 5)), np.full((4, 5), np.inf), 1), {}, "NaN or Inf"),
        ((np.zeros((0, 5)), np.zeros((4, 5)), 1), {}, "empty"),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 1), {"backend": "annoy"}, "unknown backend"),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 1.5), {}, "integer"),
        ((np.zeros((2, 5)), np.zeros((4, 5)), 1), {"memory_budget": 10}, "too small"),
        (
            (np.zeros((2, 5)), np.zeros((4, 5)), 1),
            {"backend": "torch", "approximate": True},
            "approximate",
        ),
    ],
)
def test_errors(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        search(*args, **kwargs)


def clustered(n, d, centers, seed):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)).astype(np.float32) * 4
    lab = rng.integers(0, centers, n)
    return (c[lab] + rng.standard_normal((n, d)).astype(np.float32)).astype(np.float32)


@pytest.mark.parametrize("backend", ["faiss-ivf", "faiss-hnsw"])
def test_approximate_recall(backend):
    x = clustered(4000, 16, 40, seed=8)
    d, i = search(x, x, 10, exclude_self=True, backend=backend)
    # exact neighbours of the first 500 points, self excluded: float64 numpy brute force
    x64 = x.astype(np.float64)
    full = ((x64[:500, None, :] - x64[None, :, :]) ** 2).sum(-1)
    full[np.arange(500), np.arange(500)] = np.inf
    ex_i = np.argsort(full, axis=1, kind="stable")[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i[:500], ex_i)])
    assert recall >= 0.9, recall
    # found neighbours come with exact distances, sorted
    assert np.all(np.diff(d, axis=1) >= 0)
    true_d = ((x[i[:50]] - x[:50, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(d[:50], true_d, rtol=1e-5)
    assert all(r not in i[r] for r in range(len(i)))


def test_approximate_flag_picks_ivf():
    x = clustered(2000, 16, 20, seed=9)
    xt = torch.from_numpy(x)
    _d, i = search(xt, xt, 5, exclude_self=True, approximate=True)
    assert isinstance(i, torch.Tensor) and i.shape == (2000, 5)


def test_module_default_budget(monkeypatch):
    seen = {}
    orig = knn_core._torch_candidates

    def spy(q, x, kk, ex, budget):
        seen["budget"] = budget
        return orig(q, x, kk, ex, budget)

    monkeypatch.setattr(knn_core, "_torch_candidates", spy)
    monkeypatch.setattr(knn_core, "DEFAULT_MEMORY_BUDGET", 123456)
    x = torch.randn(20, 3)
    search(x, x, 2, backend="torch")
    assert seen["budget"] == 123456


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", EXACT)
def test_cuda_matches_cpu(backend):
    x = torch.randn(2000, 64)
    dc, ic = search(x, x, 5, exclude_self=True, backend="torch")
    dg, ig = search(x.cuda(), x.cuda(), 5, exclude_self=True, backend=backend)
    assert dg.device.type == "cuda"
    assert torch.equal(ic, ig.cpu()) and torch.equal(dc, dg.cpu())


# IVF parameters: the rule documented in search() (nlist = round(sqrt N) capped at N // 39,
# training sample min(N, max(39 nlist, 50 000)), 10 k-means iterations, nprobe = max(8,
# ceil(nlist / 128)) capped at nlist), checked with numbers worked out by hand.
@pytest.mark.parametrize(
    ("n", "nlist", "ntrain", "nprobe"),
    [
        (2_000, 45, 2_000, 8),  # round(44.7) = 45 <= 2000 // 39 = 51; train on all points
        (100_000, 316, 50_000, 8),
        (1_000_000, 1_000, 50_000, 8),  # training sample bounded, not 64 * nlist = 64 000 ...
        (10_000_000, 3_162, 123_318, 25),  # 39 * 3162 = 123 318; ceil(3162 / 128) = 25
        (100, 2, 100, 2),  # 100 // 39 = 2 lists; nprobe capped at nlist
    ],
)
def test_ivf_config_rule(n, nlist, ntrain, nprobe):
    cfg = knn_core._ivf_config(n)
    assert (cfg.nlist, cfg.ntrain, cfg.nprobe, cfg.niter) == (nlist, ntrain, nprobe, 10)


def test_ivf_config_overrides():
    cfg = knn_core._ivf_config(1_000_000, nlist=4_000, nprobe=5_000)
    assert (cfg.nlist, cfg.nprobe, cfg.ntrain) == (4_000, 4_000, 156_000)
    with pytest.raises(InputError, match="nlist"):
        knn_core._ivf_config(100, nlist=0)
    with pytest.raises(InputError, match="nlist"):
        knn_core._ivf_config(100, nlist=101)
    with pytest.raises(InputError, match="nprobe"):
        knn_core._ivf_config(100, nprobe=0)


@pytest.mark.parametrize("nq", [40, 3000])  # per-query search / list-by-list (big batch) search
def test_ivf_probing_all_lists_is_exact(nq):
    # with nprobe = nlist every list is scanned: the result must be the brute-force k-NN
    x = np.random.default_rng(11).standard_normal((3000, 8)).astype(np.float32)
    q = x[:nq]
    ex = nq == len(x)
    d, i = search(q, x, 4, exclude_self=ex, backend="faiss-ivf", nlist=20, nprobe=20)
    full = ((q.astype(np.float64)[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if ex:
        np.fill_diagonal(full, np.inf)
    ref = np.argsort(full, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(i, ref)
    np.testing.assert_allclose(d, np.take_along_axis(full, ref, 1), rtol=1e-5)


def test_views_of_the_database_count_as_the_database():
    x = np.random.default_rng(12).standard_normal((80, 3)).astype(np.float32)
    _d1, i1 = search(x[:], x, 4, exclude_self=True)
    _d2, i2 = search(x, x, 4, exclude_self=True)
    np.testing.assert_array_equal(i1, i2)
    xt = torch.from_numpy(x)
    _d, i3 = search(xt[:], xt, 4, exclude_self=True)
    np.testing.assert_array_equal(i3.numpy(), i2)
    with pytest.raises(InputError, match="self_indices"):  # same memory, another layout
        search(x[::-1], x, 4, exclude_self=True)
