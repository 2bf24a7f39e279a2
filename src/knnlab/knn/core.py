"""Exact (and optionally approximate) k-nearest-neighbour search under squared L2.

The primary entry point is :func:`search`. How exactness is achieved:

1. **Candidates.** Distances are ranked with the fast expansion ``‖q‖² + ‖x‖² − 2 q·x`` (a float32
   matrix product: ``torch.addmm`` into one preallocated buffer for the ``"torch"`` backend, faiss's
   flat L2 kernel for ``"faiss"``), chunk by chunk over the queries *and* the database, keeping the
   ``k + CANDIDATE_MARGIN`` best candidates per query (merged across chunks with ``topk``). The
   buffer is sized from ``memory_budget``, so no Q×N matrix is materialised for large inputs.
   All-vs-all on CPU (``exclude_self``, 2-D input, ``"torch"``): the expansion matrix is symmetric,
   so :mod:`knnlab.knn.symmetric` computes each off-diagonal block once and uses it for both of its
   row blocks (half the product flops); its values carry one more rounding (``δ`` below uses
   ``d + 6``, ``d + 10`` for float64 inputs).
2. **Exact re-ranking.** The candidates' distances are recomputed by direct differences
   ``Σ (q − x)²`` in float64 (the difference of two float32 numbers is exact in float64), rounded to
   float32, and sorted by ``(distance, index)``.
3. **Certificate.** The float32 expansion is within ``δ = (d + 4)·u·1.01·(‖q‖ + M)²`` of the true
   distance (``u = 2⁻²⁴``, ``M = max‖x‖``; a standard worst-case dot-product error bound; ``d + 8``
   for float64 inputs, which are rounded to float32 for the expansion). Every point left out of a
   query's candidates has an expansion value ``≥ T`` (the largest kept one), hence a true distance
   ``≥ T − δ``. The row is certified when ``T − δ`` exceeds the k-th exact distance (with room for
   its float32 rounding), i.e. no left-out point can beat or tie the k-th neighbour.
   Uncertified rows (rare on real data: near-ties at the candidate boundary, more exact duplicates
   than the margin) are redone by a certified rescan: the database is scanned in index order with the
   expansion and a point's exact distance is computed whenever its lower bound ``max(0, A − δ)``
   could still place it in the list.

**Guarantee.** For the exact backends (``"auto"``, ``"torch"``, ``"faiss"``) the returned ``idx``
are the true k nearest neighbours ranked by the exact squared distance rounded to float32 and,
among equal float32 distances, by the lower index; ``dist`` holds those distances. So results are
deterministic and identical across backends and chunk sizes. faiss alone, by contrast, ranks by the
float32 expansion and breaks ties arbitrarily. The approximate backends (``"faiss-ivf"``,
``"faiss-hnsw"``) return exact, sorted distances for the neighbours they find, but can miss true
neighbours (recall, see :func:`search`).

**Speed (CPU).** The re-ranking costs ``O(Q·(k + margin)·d)``, negligible next to the ``O(Q·N·d)``
product. On CPU the product dominates and faiss's BLAS + fused heap selection is a little faster
than ``torch.mm`` + ``torch.topk`` (see ``benchmarks/knn.py``), so ``"auto"`` uses the faiss kernel
on CPU when faiss is installed and torch on CUDA. Except all-vs-all (``search(x, x, k,
exclude_self=True)``, 2-D): there ``"auto"`` uses the symmetric torch path, which computes half
the products. Measured CPU time (2 threads, d = 512, k = 5, Gaussian data, shared machine): N = 20 000
4.5 s vs faiss 6.0 s; N = 50 000 30 s vs faiss 35 s.

**Memory.** ``memory_budget`` bounds the working buffers (distance block, selection, re-ranking
blocks). Not counted: output-sized arrays (``Q × (k + margin)``), float32 copies of non-float32
inputs, and faiss's own fixed-size blocks (about 16 MiB).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError
from knnlab.knn.symmetric import symmetric_candidates
from knnlab.knn.symmetric import usable as symmetric_usable

__all__ = [
    "APPROXIMATE_BACKENDS",
    "BACKENDS",
    "CANDIDATE_MARGIN",
    "DEFAULT_MEMORY_BUDGET",
    "EXACT_BACKENDS",
    "search",
    "set_default_memory_budget",
]


def _env_budget() -> int:
    raw = os.environ.get("KNNLAB_KNN_MEMORY_BUDGET", "")
    try:
        return int(float(raw)) if raw else 256 * 2**20
    except ValueError:
        raise InputError(
            f"KNNLAB_KNN_MEMORY_BUDGET={raw!r} is not a number of bytes (e.g. 268435456)"
        ) from None


#: Default bound, in bytes, on the working memory of one :func:`search` call (256 MiB, or the
#: environment variable ``KNNLAB_KNN_MEMORY_BUDGET``). Change it with
#: :func:`knnlab.knn.set_default_memory_budget` (``knnlab.knn.DEFAULT_MEMORY_BUDGET`` is a copy
#: made at import) or per call with ``memory_budget=``.
DEFAULT_MEMORY_BUDGET: int = _env_budget()

#: Extra candidates kept per query beyond ``k`` before the exact re-ranking.
CANDIDATE_MARGIN: int = 3

EXACT_BACKENDS = ("auto", "torch", "faiss")
APPROXIMATE_BACKENDS = ("faiss-ivf", "faiss-hnsw")
BACKENDS = EXACT_BACKENDS + APPROXIMATE_BACKENDS

_U32 = 2.0**-24
_MIN_BUDGET = 64 * 1024


def set_default_memory_budget(nbytes: int) -> None:
    """Set the module-wide default ``memory_budget`` (bytes) used when a call passes ``None``."""
    global DEFAULT_MEMORY_BUDGET
    if int(nbytes) < _MIN_BUDGET:
        raise InputError(f"memory budget {nbytes} bytes is too small; use at least {_MIN_BUDGET}")
    DEFAULT_MEMORY_BUDGET = int(nbytes)


# --------------------------------------------------------------------------------------------------
# input handling


@dataclass
class _Inputs:
    q: torch.Tensor  # (B, Q, d), original dtype promoted to float32/float64, input device
    x: torch.Tensor  # (B, N, d)
    batched: bool
    numpy: bool
    device: torch.device
    same: bool  # queries is database (or a view of the same memory, same layout)
    self_idx: torch.Tensor | None  # (B, Q) int64: each query's own database index (exclude_self)


def _as_tensor(a: Any, name: str) -> tuple[torch.Tensor, bool]:
    if isinstance(a, torch.Tensor):
        return a.detach(), False
    if isinstance(a, np.ndarray):
        if a.dtype.kind not in "fiub":
            raise InputError(f"{name} has dtype {a.dtype}; expected a real-valued array")
        return torch.from_numpy(np.ascontiguousarray(a)), True
    try:
        arr = np.asarray(a)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise InputError(
            f"{name} must be a torch tensor or a numpy array, got {type(a).__name__}"
        ) from e
    if arr.dtype.kind not in "fiub":
        raise InputError(
            f"{name} must be a numeric torch tensor or numpy array, got {type(a).__name__}"
        )
    return torch.from_numpy(np.ascontiguousarray(arr)), True


def _same_points(a: Any, b: Any) -> bool:
    """``a is b``, or two views of the same memory with the same dtype, shape and strides
    (``x`` and ``x[:]``): query ``i`` is then database row ``i``. Equal copies are not."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return (
            a.device == b.device
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.stride() == b.stride()
            and a.data_ptr() == b.data_ptr()
        )
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        )
    return False


def _self_indices(self_indices: Any, q: torch.Tensor, n: int, batched: bool) -> torch.Tensor:
    """``self_indices`` as a ``(Q,)`` or ``(B, Q)`` int64 tensor of database rows in ``0..N-1``."""
    t, _ = _as_tensor(self_indices, "self_indices")
    want = tuple(q.shape[:-1])
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"self_indices has dtype {t.dtype}; expected integer database indices")
    if tuple(t.shape) != want:
        raise InputError(
            f"self_indices has shape {tuple(t.shape)}; expected {want}, one database index per query"
        )
    t = t.to(device=q.device, dtype=torch.int64)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
        raise InputError(
            f"self_indices must lie in 0..{n - 1} (the database rows), got values in "
            f"{int(t.min())}..{int(t.max())}"
        )
    return t if batched else t.unsqueeze(0)


def _prepare(
    queries: Any, database: Any, k: Any, exclude_self: bool, self_indices: Any = None
) -> _Inputs:
    same = _same_points(queries, database)
    q, q_np = _as_tensor(queries, "queries")
    x, x_np = _as_tensor(database, "database")
    if q.is_complex() or x.is_complex():
        raise InputError("queries and database must be real-valued, not complex")
    if q.ndim not in (2, 3):
        raise InputError(
            f"queries must have shape (Q, d) or (B, Q, d), got {tuple(q.shape)} ({q.ndim} dims)"
        )
    if x.ndim != q.ndim:
        raise InputError(
            f"database must have the same number of dims as queries ({q.ndim}): got database "
            f"shape {tuple(x.shape)} and queries shape {tuple(q.shape)}"
        )
    if q.device != x.device:
        raise InputError(
            f"queries are on {q.device} but database is on {x.device}; move both to one device"
        )
    batched = q.ndim == 3
    if batched and q.shape[0] != x.shape[0]:
        raise InputError(
            f"batch sizes differ: queries {tuple(q.shape)} vs database {tuple(x.shape)}"
        )
    if q.shape[-1] != x.shape[-1]:
        raise InputError(
            f"dimension mismatch: queries have d={q.shape[-1]}, database has d={x.shape[-1]}"
        )
    if q.shape[-1] == 0 or q.shape[-2] == 0 or x.shape[-2] == 0 or (batched and q.shape[0] == 0):
        raise InputError(
            f"empty input: queries {tuple(q.shape)}, database {tuple(x.shape)}; need at least one "
            "point with at least one dimension"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k must be an integer, got {k!r}")
    k = int(k)
    n = x.shape[-2]
    self_idx: torch.Tensor | None = None
    if self_indices is not None and not exclude_self:
        raise InputError("self_indices is only used with exclude_self=True; pass both or neither")
    if exclude_self:
        if self_indices is not None:
            self_idx = _self_indices(self_indices, q, n, batched)
        elif same:
            nb = q.shape[0] if batched else 1
            self_idx = torch.arange(n, device=q.device).expand(nb, n)
        else:
            raise InputError(
                "exclude_self=True needs queries to be the database itself (search(x, x, ...)) "
                "or self_indices= giving each query's own database row; got two different objects "
                f"(queries {tuple(q.shape)}, database {tuple(x.shape)})"
            )
        if k < 1 or k > n - 1:
            raise InputError(
                f"k={k} is out of range: with exclude_self=True and N={n} database points, k must be "
                f"in 1..{n - 1}"
            )
    elif k < 1 or k > n:
        raise InputError(f"k={k} is out of range: with N={n} database points, k must be in 1..{n}")
    if not q.is_floating_point() or q.dtype in (torch.float16, torch.bfloat16):
        q = q.to(torch.float32)
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.to(torch.float32)
    for name, t in (("queries", q), ("database", x)) if not same else (("queries", q),):
        lo, hi = torch.aminmax(t)  # one pass; NaN propagates (once when queries are the database)
        if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
            raise InputError(f"{name} contains NaN or Inf values; remove or replace them first")
    if not batched:
        q, x = q.unsqueeze(0), x.unsqueeze(0)
    return _Inputs(
        q=q,
        x=x,
        batched=batched,
        numpy=q_np and x_np,
        device=q.device,
        same=same,
        self_idx=self_idx,
    )


# --------------------------------------------------------------------------------------------------
# exact re-ranking and certificate


def _sqnorms(x: torch.Tensor) -> torch.Tensor:
    """Squared row norms in float32 without an (N, d) temporary (error within the δ bound)."""
    return torch.linalg.vector_norm(x, dim=1).square_()


def _exact_dist(q: torch.Tensor, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Exact squared distances ``sum((q_i − x_idx[i, j])²)`` for candidates ``idx (q, c)``.

    Direct differences in float64 (exact differences of float32 inputs), rounded to float32 and
    returned as float64 holding float32 values, so ranking and ties refer to the returned float32
    distances. Blocks of ~1 MiB stay in cache.
    """
    nq, c = idx.shape
    d = x.shape[1]
    rows = max(1, min(nq, 2**20 // (8 * c * d)))
    out = torch.empty((nq, c), dtype=torch.float64, device=q.device)
    for s in range(0, nq, rows):
        e = min(nq, s + rows)
        g = x.index_select(0, idx[s:e].reshape(-1)).view(e - s, c, d).to(torch.float64)
        g.sub_(q[s:e].to(torch.float64).unsqueeze(1))
        torch.linalg.vecdot(g, g, out=out[s:e])
    return out.to(torch.float32).to(torch.float64)


def _rerank(
    q: torch.Tensor, x: torch.Tensor, k: int, cand_i: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact distances of the candidates, then the first ``k`` by (distance, index).

    Invalid candidates (index −1) sort last as (inf, N). Returns float64 (holding float32 values)
    distances and int64 indices, shape ``(Q, k)``. On CPU, numpy: single-threaded, few large ops.
    """
    n = x.shape[0]
    if q.device.type == "cpu":
        qn, xn, ci = q.numpy(), x.numpy(), cand_i.numpy()
        nq, c = ci.shape
        d = xn.shape[1]
        valid = ci >= 0
        all_valid = bool(valid.all())
        cc = ci if all_valid else np.where(valid, ci, 0)
        ex = np.empty((nq, c), dtype=np.float64)
        rows = max(1, min(nq, 2**20 // (8 * c * d)))  # ~1 MiB float64 blocks stay in cache
        for s in range(0, nq, rows):
            e = min(nq, s + rows)
            g = xn[cc[s:e]].astype(np.float64)
            g -= qn[s:e, None, :]
            np.einsum("rcd,rcd->rc", g, g, out=ex[s:e])
        ex32 = ex.astype(np.float32)
        if not all_valid:
            ex32[~valid] = np.inf
            cc = np.where(valid, ci, n)
        key = (ex32.view(np.int32).astype(np.int64) << 32) | cc
        key.sort(axis=1)
        key = key[:, :k]
        dist = (key >> 32).astype(np.int32).view(np.float32).astype(np.float64)
        return torch.from_numpy(dist), torch.from_numpy(key & 0xFFFFFFFF)
    tvalid = cand_i >= 0
    tex = torch.where(tvalid, _exact_dist(q, x, cand_i.clamp_min(0)), math.inf)
    dd, ii = _sort_by_dist_then_index(tex, torch.where(tvalid, cand_i, n))
    return dd[:, :k].contiguous(), ii[:, :k].contiguous()


def _sort_by_dist_then_index(d: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (distance, index) with one sort on a packed int64 key.

    ``d`` holds float32 values ≥ 0 (or +inf) and ``0 ≤ i < 2³¹``; the bit pattern of a non-negative
    float32 orders like the float, so ``bits << 32 | index`` orders lexicographically.
    """
    key = (d.to(torch.float32).view(torch.int32).to(torch.int64) << 32) | i
    key = torch.sort(key, dim=-1).values
    dist = (key >> 32).to(torch.int32).view(torch.float32).to(torch.float64)
    return dist, key & 0xFFFFFFFF


def _exact_full(
    q: torch.Tensor, x: torch.Tensor, k: int, self_rows: torch.Tensor | None, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force by direct differences in float64 for a few query rows.

    Exact ranking by (float32-rounded distance, index). ``self_rows`` gives, per query row, its own
    index to exclude (or None). Used only for rows whose fast result could not be certified.
    """
    n, d = x.shape
    rows = q.shape[0]
    dev = q.device
    best_d = torch.full((rows, k), math.inf, dtype=torch.float64, device=dev)
    best_i = torch.full((rows, k), -1, dtype=torch.int64, device=dev)
    q64 = q.to(torch.float64)
    rb = max(1, min(rows, budget // (3 * 8 * d * 64)))
    for r0 in range(0, rows, rb):
        r1 = min(rows, r0 + rb)
        qq = q64[r0:r1].unsqueeze(1)
        nc = max(1, min(n, budget // (3 * 8 * d * (r1 - r0))))
        bd, bi = best_d[r0:r1], best_i[r0:r1]
        for s in range(0, n, nc):
            e = min(n, s + nc)
            diff = x[s:e].to(torch.float64).unsqueeze(0) - qq
            dist = (diff * diff).sum(-1).to(torch.float32).to(torch.float64)
            cols = torch.arange(s, e, device=dev).expand(r1 - r0, -1)
            if self_rows is not None:
                dist = dist.masked_fill(cols == self_rows[r0:r1, None], math.inf)
            # best holds lower indices than this chunk: a stable sort by distance breaks ties by index
            dd = torch.cat([bd, dist], 1)
            ii = torch.cat([bi, cols], 1)
            dd, order = torch.sort(dd, dim=1, stable=True)
            bd, bi = dd[:, :k], ii.gather(1, order[:, :k])
        best_d[r0:r1], best_i[r0:r1] = bd, bi
    return best_d, best_i


def _rescan(
    q: torch.Tensor,
    x: torch.Tensor,
    k: int,
    kth0: torch.Tensor,
    delta: torch.Tensor,
    self_rows: torch.Tensor | None,
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Certified exact search for rows whose fast result could not be certified.

    Scans the database in index order with the float32 expansion; a point's exact distance is
    computed only when its lower bound ``max(0, A − δ)`` could still place it in the list: ``≤ kth0``
    (an upper bound of the k-th distance: the rounded distance of an actual point) until ``k`` points
    are found, then ``<`` the current k-th (later indices lose ties). So near-ties cost a few extra
    exact distances, and massive exact duplicates stop costing anything once k zeros are found.
    """
    rows = q.shape[0]
    n, d = x.shape
    dev = q.device
    q32 = q.to(torch.float32)
    x32 = x if x.dtype == torch.float32 else x.to(torch.float32)
    xn = _sqnorms(x32)
    qsq = _sqnorms(q32).to(torch.float64)
    best_d = torch.full((rows, k), math.inf, dtype=torch.float64, device=dev)
    best_i = torch.full((rows, k), -1, dtype=torch.int64, device=dev)
    rb = min(rows, 256)
    nc = max(1, min(n, budget // (6 * 8 * rb)))
    slack = 1.0 + 4 * _U32
    for r0 in range(0, rows, rb):
        r1 = min(rows, r0 + rb)
        bd, bi = best_d[r0:r1], best_i[r0:r1]
        for s in range(0, n, nc):
            e = min(n, s + nc)
            a = torch.addmm(xn[s:e].unsqueeze(0), q32[r0:r1], x32[s:e].T, alpha=-2.0)
            lower = (a.to(torch.float64) + qsq[r0:r1, None] - delta[r0:r1, None]).clamp_min(0.0)
            full = bi[:, k - 1] >= 0
            lim = torch.where(full, bd[:, k - 1], kth0[r0:r1] * slack + 1e-37)
            mask = torch.where(full[:, None], lower < lim[:, None], lower <= lim[:, None])
            if self_rows is not None:
                sr = self_rows[r0:r1]
                inside = (sr >= s) & (sr < e)
                mask[inside.nonzero().squeeze(1), (sr[inside] - s)] = False
            rr, jj = mask.nonzero(as_tuple=True)
            if rr.numel() == 0:
                continue
            dist = torch.empty(rr.shape[0], dtype=torch.float64, device=dev)
            step = max(1, budget // (4 * 8 * d))
            for p in range(0, rr.shape[0], step):
                g = x[s + jj[p : p + step]].to(torch.float64)
                g.sub_(q[r0 + rr[p : p + step]].to(torch.float64))
                g.mul_(g)
                dist[p : p + step] = g.sum(1)
            dist = dist.to(torch.float32).to(torch.float64)
            hit = torch.unique(rr)
            dense = torch.full((hit.shape[0], e - s), math.inf, dtype=torch.float64, device=dev)
            dense[torch.searchsorted(hit, rr), jj] = dist
            cols = torch.arange(s, e, device=dev).expand(hit.shape[0], -1)
            # best holds lower indices than this chunk: a stable sort breaks ties by index
            dd = torch.cat([bd[hit], dense], 1)
            ii = torch.cat([bi[hit], cols], 1)
            dd, order = torch.sort(dd, dim=1, stable=True)
            bd[hit], bi[hit] = dd[:, :k], ii.gather(1, order[:, :k])
        best_d[r0:r1], best_i[r0:r1] = bd, bi
    return best_d, best_i


def _finish(
    q: torch.Tensor,
    x: torch.Tensor,
    k: int,
    cand_i: torch.Tensor,
    thresh: torch.Tensor | None,
    delta: torch.Tensor | None,
    self_idx: torch.Tensor | None,
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-rank candidates exactly, certify, and redo uncertified rows by brute force.

    ``cand_i (Q, c)``: candidate indices (−1 for "none"); ``thresh (Q,)``: every point *not* in the
    candidate list has an expansion value ≥ ``thresh``, and expansion values are within ``delta``
    of the true distance (None: no certificate, approximate mode). ``self_idx (Q,)``: query ``i`` is
    database row ``self_idx[i]``, excluded from its own list (None: nothing excluded).
    """
    n = x.shape[0]
    if n >= 2**31:
        raise InputError(f"database of {n} points is too large (at most 2**31 - 1 per batch item)")
    out_d, out_i = _rerank(q, x, k, cand_i)
    if thresh is not None:
        assert delta is not None
        dk = out_d[:, k - 1]
        # strict, with room for the float32 rounding of the k-th distance: a left-out point can
        # neither beat nor tie with the k-th neighbour
        bad = ~((thresh - delta) > dk * (1.0 + 4 * _U32) + 1e-37)
        bad &= out_i[:, k - 1] < n  # (always true here)
    else:
        bad = out_i[:, k - 1] >= n  # approximate mode: rows that found fewer than k points
    if bool(bad.any()):
        rows = torch.nonzero(bad).squeeze(1)
        self_rows = None if self_idx is None else self_idx[rows]
        if delta is None:  # approximate mode: plain brute force for the few incomplete rows
            bd, bi = _exact_full(q[rows], x, k, self_rows, budget)
        else:
            bd, bi = _rescan(q[rows], x, k, out_d[rows, k - 1], delta[rows], self_rows, budget)
        out_d[rows] = bd
        out_i[rows] = bi
    return out_d, out_i


# --------------------------------------------------------------------------------------------------
# candidate generation


def _torch_candidates(
    q32: torch.Tensor, x32: torch.Tensor, kk: int, self_idx: torch.Tensor | None, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``kk`` of the float32 expansion, chunked over queries and database.

    ``self_idx (Q,)``: each query's own database row, left out (None: nothing left out).

    Ranks by ``s = q·x − ||x||²/2`` (largest first; one fused ``addmm`` per chunk), so the
    expansion value is ``||q||² − 2 s``. Returns ``(expansion values without ||q||², indices)``,
    i.e. ``−2 s`` and the database indices.
    """
    nq = q32.shape[0]
    n = x32.shape[0]
    dev = q32.device
    neg_half_xn = _sqnorms(x32).mul_(-0.5).unsqueeze(0)
    # one (qc, nc) float32 buffer plus topk workspace within the budget; whole database rows when
    # at least 256 query rows fit, else database chunks
    nc = n if n * 4 * 256 * 2 <= budget else max(kk, min(n, budget // (2 * 4 * 256)))
    qc = max(1, min(nq, budget // (2 * 4 * nc)))
    buf = torch.empty((qc, nc), dtype=torch.float32, device=dev)
    vals = torch.empty((nq, kk), dtype=torch.float32, device=dev)
    inds = torch.empty((nq, kk), dtype=torch.int64, device=dev)
    for qs in range(0, nq, qc):
        qe = min(nq, qs + qc)
        qb = q32[qs:qe]
        best_v: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for ns in range(0, n, nc):
            ne = min(n, ns + nc)
            blk = buf[: qe - qs, : ne - ns]
            torch.addmm(neg_half_xn[:, ns:ne], qb, x32[ns:ne].T, out=blk)
            if self_idx is not None:
                own = self_idx[qs:qe]
                inside = ((own >= ns) & (own < ne)).nonzero().squeeze(1)
                blk[inside, own[inside] - ns] = -math.inf
            kc = min(kk, ne - ns)
            v, i = torch.topk(blk, kc, dim=1, largest=True, sorted=False)
            if best_v is None:
                best_v, best_i = v, i if ns == 0 else i + ns
            else:
                assert best_i is not None
                v = torch.cat([best_v, v], 1)
                i = torch.cat([best_i, i + ns], 1)
                kc = min(kk, v.shape[1])
                v, pos = torch.topk(v, kc, dim=1, largest=True, sorted=False)
                best_v, best_i = v, i.gather(1, pos)
        assert best_v is not None and best_i is not None
        vals[qs:qe] = best_v
        inds[qs:qe] = best_i
    return vals.mul_(-2.0), inds


def _faiss_candidates(
    q32: torch.Tensor, x32: torch.Tensor, kk: int, self_idx: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``kk`` of faiss's flat L2 (``||q||² + ||x||² − 2q·x``, float32), ``self_idx`` removed."""
    import faiss

    dev = q32.device
    exclude_self = self_idx is not None
    k_search = kk + 1 if exclude_self else kk
    dist: torch.Tensor
    ind: torch.Tensor
    if dev.type == "cuda" and hasattr(faiss, "StandardGpuResources") and k_search <= 2048:
        import faiss.contrib.torch_utils  # lets knn_gpu take torch CUDA tensors

        res = _gpu_resources(faiss)
        dg, ig = faiss.knn_gpu(res, q32.contiguous(), x32.contiguous(), k_search)
        dist = torch.as_tensor(dg, device=dev)
        ind = torch.as_tensor(ig, device=dev).to(torch.int64)
    else:
        qn = q32.detach().cpu().contiguous().numpy()
        xn = x32.detach().cpu().contiguous().numpy()
        d_, i_ = faiss.knn(qn, xn, k_search)
        dist = torch.from_numpy(d_).to(dev)
        ind = torch.from_numpy(i_).to(torch.int64).to(dev)
    if self_idx is not None:
        dist, ind = _drop_self(dist, ind, self_idx)
    return dist, ind  # faiss values include ||q||² (clamped at 0)


def _drop_self(
    dist: torch.Tensor, ind: torch.Tensor, self_idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove each row's own index ``self_idx[i]``; where absent, drop the last column."""
    c = ind.shape[1]
    rows = self_idx.to(ind.device)
    if bool((ind[:, 0] == rows).all()):  # the usual case: self first
        return dist[:, 1:], ind[:, 1:]
    is_self = ind == rows.unsqueeze(1)
    drop = torch.where(is_self.any(1), is_self.to(torch.int8).argmax(1), c - 1)
    cols = torch.arange(c - 1, device=ind.device).unsqueeze(0)
    cols = cols + (cols >= drop.unsqueeze(1)).to(cols.dtype)
    return dist.gather(1, cols), ind.gather(1, cols)


_GPU_RES: Any = None


def _gpu_resources(faiss: Any) -> Any:
    global _GPU_RES
    if _GPU_RES is None:
        _GPU_RES = faiss.StandardGpuResources()
    return _GPU_RES


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# approximate


#: IVF training: at least this many sampled points (or all N when fewer), and at least
#: ``IVF_TRAIN_PER_LIST`` per list (faiss's minimum for a stable k-means is 39).
IVF_TRAIN_MIN: int = 50_000
IVF_TRAIN_PER_LIST: int = 39
#: k-means iterations of the IVF training (faiss's default is 25; the assignment quality that
#: matters for recall is reached after a few iterations).
IVF_NITER: int = 10
#: Default lists probed: ``max(IVF_NPROBE_MIN, ⌈nlist / IVF_NPROBE_DIV⌉)``.
IVF_NPROBE_MIN: int = 8
IVF_NPROBE_DIV: int = 128


@dataclass(frozen=True)
class _IVFConfig:
    nlist: int
    nprobe: int
    ntrain: int
    niter: int


def _ivf_config(n: int, nlist: int | None = None, nprobe: int | None = None) -> _IVFConfig:
    """The IVF parameters for ``n`` database points (see :func:`search` for the rule)."""
    if nlist is None:
        nlist = max(1, min(n // IVF_TRAIN_PER_LIST, round(math.sqrt(n))))
    elif not 1 <= int(nlist) <= n:
        raise InputError(f"nlist={nlist} must be between 1 and the database size {n}")
    nlist = int(nlist)
    if nprobe is None:
        nprobe = max(IVF_NPROBE_MIN, math.ceil(nlist / IVF_NPROBE_DIV))
    elif int(nprobe) < 1:
        raise InputError(f"nprobe={nprobe} must be at least 1")
    ntrain = min(n, max(IVF_TRAIN_PER_LIST * nlist, IVF_TRAIN_MIN))
    return _IVFConfig(nlist, min(nlist, int(nprobe)), ntrain, IVF_NITER)


def _ivf_search(index: Any, qn: np.ndarray, k: int, cfg: _IVFConfig) -> np.ndarray:
    """IVF search; large query sets are processed list by list as matrix products.

    ``index.search`` scans each query's lists separately (vector by vector, memory bound). When
    on average many queries visit each list (all-vs-all search), faiss's ``big_batch_search``
    groups the queries by list and computes each group against the list with a matrix product
    (BLAS): same probed lists, hence the same neighbours, a few times faster.
    """
    if qn.shape[0] * cfg.nprobe >= 64 * cfg.nlist:
        try:
            from faiss.contrib.big_batch_search import big_batch_search
        except ImportError:  # pragma: no cover - old faiss
            pass
        else:
            # verbose=1 is its quietest setting (a few timing lines on stdout): swallow them
            with contextlib.redirect_stdout(io.StringIO()):
                _, i_ = big_batch_search(index, qn, k, verbose=1)
            return np.asarray(i_)
    _, i_ = index.search(qn, k)
    return np.asarray(i_)


def _approx_candidates(
    q32: torch.Tensor,
    x32: torch.Tensor,
    kk: int,
    self_idx: torch.Tensor | None,
    backend: str,
    nprobe: int | None,
    seed: int,
    nlist: int | None = None,
) -> torch.Tensor:
    import faiss

    n, d = x32.shape
    exclude_self = self_idx is not None
    xn = np.ascontiguousarray(x32.detach().cpu().numpy())
    qn = np.ascontiguousarray(q32.detach().cpu().numpy())
    k_search = min(n, kk + 1 if exclude_self else kk)
    index: Any
    if backend == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(d, 32)
        index.hnsw.efConstruction = 80
        index.add(xn)
        index.hnsw.efSearch = max(64, 2 * k_search)
        i_ = index.search(qn, k_search)[1]
    else:
        cfg = _ivf_config(n, nlist, nprobe)
        quant = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quant, d, cfg.nlist)
        rng = np.random.default_rng(seed)
        train = xn if cfg.ntrain == n else xn[np.sort(rng.choice(n, cfg.ntrain, replace=False))]
        index.cp.seed = seed
        index.cp.niter = cfg.niter
        index.train(train)
        del train
        index.add(xn)
        index.nprobe = cfg.nprobe
        i_ = _ivf_search(index, qn, k_search, cfg)
    ind = torch.from_numpy(np.ascontiguousarray(i_)).to(torch.int64)
    if self_idx is not None:
        ind = _drop_self(torch.zeros_like(ind, dtype=torch.float32), ind, self_idx.cpu())[1]
    return ind.to(q32.device)


# --------------------------------------------------------------------------------------------------
# public API


def _pick_backend(
    device: torch.device, nq: int, n: int, d: int, *, all_vs_all: bool = False
) -> str:
    """``all_vs_all``: the search can take the symmetric candidate path (see :func:`search`)."""
    if device.type == "cuda" or all_vs_all:
        return "torch"
    # Measured on CPU (benchmarks/knn.py): see the module README/CHANGELOG for numbers.
    return "faiss" if _faiss_available() else "torch"


def search(
    queries: Any,
    database: Any,
    k: int,
    *,
    exclude_self: bool = False,
    self_indices: Any = None,
    backend: str = "auto",
    memory_budget: int | None = None,
    approximate: bool = False,
    nprobe: int | None = None,
    nlist: int | None = None,
    seed: int = 0,
) -> tuple[Any, Any]:
    """k nearest neighbours of each query in ``database`` under squared Euclidean distance.

    Args:
        queries: ``(Q, d)`` or batched ``(B, Q, d)`` torch tensor or numpy array.
        database: ``(N, d)`` or ``(B, N, d)``, same kind of batching as ``queries``.
        k: neighbours per query, ``1 ≤ k ≤ N`` (``≤ N − 1`` with ``exclude_self``).
        exclude_self: drop each query's own point from its list — by index, so exact duplicates
            still find each other at distance 0. Needs ``queries is database`` (or a view of the same
            memory with the same layout; query ``i`` is point ``i``) or ``self_indices``; other
            inputs are refused even when equal, since nothing says which row a query is.
        self_indices: with ``exclude_self``, the database row of each query, ``(Q,)`` or ``(B, Q)``
            integers in ``0..N-1`` (e.g. ``arange(N)`` for a copy of the database, or the rows a
            query subset was taken from).
        backend: ``"auto"`` (fastest exact backend for the device: torch on CUDA and for the
            all-vs-all search with ``exclude_self`` on CPU, else faiss), ``"torch"`` (CPU/CUDA),
            ``"faiss"`` (flat L2 on CPU, GPU faiss when installed and the data is on CUDA), or the
            approximate ``"faiss-ivf"`` (IVF-Flat, see ``approximate``) and ``"faiss-hnsw"``
            (HNSW, M=32, efConstruction=80, efSearch=max(64, 2k)).
        memory_budget: bound in bytes on extra working memory (default
            :data:`DEFAULT_MEMORY_BUDGET`, 256 MiB). Input conversions (to float32, to host for faiss)
            are not counted; the approximate backends also hold a copy of the database in the index.
        approximate: shorthand for ``backend="faiss-ivf"`` (when backend is ``"auto"``), for
            millions of points, where the exact O(Q·N·d) search is too slow. The IVF index is built
            on every call:

            * ``nlist = round(√N)`` lists (at most ``N // 39``);
            * k-means on ``min(N, max(39·nlist, 50 000))`` sampled points, 10 iterations;
            * ``nprobe = max(8, ⌈nlist / 128⌉)`` lists probed per query, i.e. about 0.8 % of the
              database at N ≥ 10⁶ (2.5 % at 10⁵);
            * many queries (``Q·nprobe ≥ 64·nlist``, e.g. all-vs-all) are searched list by list
              with matrix products (faiss ``big_batch_search``), ~6× faster than per-query scans.

            Accuracy trade-off, measured recall@5 (self excluded, 2 000 sampled queries) on i.i.d.
            Gaussian data, d = 512 — the worst case, no cluster structure for IVF to exploit:

            ======  ======  =====  =====  =====  =====  =====
            N       nlist   np=4   np=8   np=16  np=32  np=64
            ======  ======  =====  =====  =====  =====  =====
            10⁵     316     0.08   0.14   0.24   0.40   0.65
            10⁶     1000    0.05   0.09   0.16   0.28   0.46
            ======  ======  =====  =====  =====  =====  =====

            Recall grows about linearly with the fraction of the data scanned, ``nprobe / nlist``,
            and so does the cost; the defaults (``nprobe = 8``) cost a few percent of the exact
            search. At N = 10⁶, d = 512 on 2 shared CPU cores: exact all-vs-all ≈ 7 h (estimated
            from 2 000 queries); IVF build 37 s; all-vs-all search with nprobe = 16 ≈ 30 min
            (estimated from 10⁵ queries); with the defaults (nprobe = 8) 520 s in all, peak RSS
            5.1 GiB (data 1.9 GiB plus the index's copy), in ``benchmarks/hubness.py``. On clustered
            data IVF recall is high (≥ 0.9 in the tests at the defaults). HNSW measured recall@10
            0.993 (clustered) / 0.77 (Gaussian) at N = 200 000, d = 64, but its graph build is slow
            at N = 10⁶, d = 512 on few cores. Raise ``nprobe`` for more recall.
        nprobe: IVF lists probed per query (approximate IVF only; default above, at most nlist).
        nlist: IVF lists (approximate IVF only; default ``round(√N)``, between 1 and N).
        seed: seed of the IVF k-means training subsample.

    Returns:
        ``(dist, idx)`` with shape ``(…, Q, k)``: float32 exact squared distances ascending, int64
        indices into the database, equal distances ordered by lower index; on the input device (numpy
        arrays in give numpy arrays out).

    Raises:
        InputError: wrong ndim, mismatched d or batch, k out of range, NaN/Inf, empty inputs, unknown
            backend, exclude_self on two different objects without self_indices, bad self_indices.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if approximate:
        if backend == "auto":
            backend = "faiss-ivf"
        elif backend not in APPROXIMATE_BACKENDS:
            raise InputError(
                f"approximate=True needs backend 'auto', 'faiss-ivf' or 'faiss-hnsw', not {backend!r}"
            )
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
    if budget < _MIN_BUDGET:
        raise InputError(
            f"memory_budget={memory_budget} bytes is too small; use at least {_MIN_BUDGET}"
        )
    inp = _prepare(queries, database, k, exclude_self, self_indices)
    k = int(k)
    nb, nq, d = inp.q.shape
    n = inp.x.shape[1]
    if backend in ("faiss", "faiss-ivf", "faiss-hnsw") and not _faiss_available():
        raise InputError(f"backend {backend!r} needs faiss: pip install faiss-cpu (or faiss-gpu)")
    kk = min(k + CANDIDATE_MARGIN, n - 1 if exclude_self else n)
    # all-vs-all: each off-diagonal block of the symmetric distance matrix serves two row blocks
    sym_ok = (
        inp.device.type == "cpu"
        and exclude_self
        and not inp.batched
        and nq == n
        and inp.self_idx is not None
        and bool((inp.self_idx[0] == torch.arange(n)).all())
        and (inp.same or torch.equal(inp.q, inp.x))
        and kk < n - 1
        and symmetric_usable(n, kk, budget)
    )
    if backend == "auto":
        backend = _pick_backend(inp.device, nq, n, d, all_vs_all=sym_ok)

    matmul_prec = torch.get_float32_matmul_precision()
    out_d = torch.empty((nb, nq, k), dtype=torch.float32, device=inp.device)
    out_i = torch.empty((nb, nq, k), dtype=torch.int64, device=inp.device)
    sym = backend == "torch" and sym_ok
    try:
        torch.set_float32_matmul_precision("highest")  # no TF32 in the candidate products
        for b in range(nb):
            q, x = inp.q[b], inp.x[b]
            q32 = q if q.dtype == torch.float32 else q.to(torch.float32)
            x32 = x if x.dtype == torch.float32 else x.to(torch.float32)
            sidx = None if inp.self_idx is None else inp.self_idx[b]
            if backend in APPROXIMATE_BACKENDS:
                ci = _approx_candidates(q32, x32, k, sidx, backend, nprobe, seed, nlist)
                dd, ii = _finish(q, x, k, ci, None, None, sidx, budget)
            else:
                qsq = _sqnorms(q32).to(torch.float64)
                if backend == "faiss":
                    vals, ci = _faiss_candidates(q32, x32, kk, sidx)
                    thresh = vals.max(1).values.to(torch.float64)
                elif sym:
                    vals, ci = symmetric_candidates(x32, kk, budget)
                    thresh = vals.max(1).values.to(torch.float64)
                else:
                    vals, ci = _torch_candidates(q32, x32, kk, sidx, budget)
                    thresh = vals.max(1).values.to(torch.float64) + qsq
                if kk >= (n - 1 if exclude_self else n):
                    thresh = torch.full_like(thresh, math.inf)  # every point is a candidate
                # forward-error bound of the float32 expansion: (d + 4)·u·(‖q‖ + M)² covers the
                # rounding of ‖x‖², ‖q‖², q·x and the sums; +4 more for float64->float32 inputs
                xmax = float(torch.linalg.vector_norm(x32, dim=1).max())
                extra = 8 if (q.dtype == torch.float64 or x.dtype == torch.float64) else 4
                if sym:
                    extra += 2  # the symmetric values also round ‖x_i‖² + ‖x_j‖²
                delta = (d + extra) * _U32 * 1.01 * (qsq.sqrt() + xmax) ** 2
                dd, ii = _finish(q, x, k, ci, thresh, delta, sidx, budget)
            out_d[b] = dd.to(torch.float32)
            out_i[b] = ii
    finally:
        torch.set_float32_matmul_precision(matmul_prec)
    if not inp.batched:
        out_d, out_i = out_d[0], out_i[0]
    if inp.numpy:
        return out_d.cpu().numpy(), out_i.cpu().numpy()
    return out_d, out_i
