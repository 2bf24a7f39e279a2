"""Candidate generation for the all-vs-all search (queries are the database, self excluded).

The expansion ``D[i, j] = ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j`` is symmetric, so each off-diagonal block
``D[I, J]`` (``I < J``) is computed once, with one matrix product, and serves both the rows of
``I`` (from ``D``) and the rows of ``J`` (from ``Dᵀ``): half the flops of the one-sided search.

1. **Diagonal blocks** (self entries set to ``+inf``): ``topk`` per row gives every row ``kk``
   candidates and a threshold, its ``kk``-th smallest value so far.
2. **Off-diagonal blocks**: the rows of ``I`` take ``topk`` along the block's rows. For the rows
   of ``J`` (the block's columns; a column-wise ``topk`` is slow on a row-major block) only the
   entries below the column's current threshold can enter a list; they are picked with one
   comparison and merged into the running lists with a small ``topk``. After the first blocks few
   entries pass. When too many pass (clustered data, duplicates) the columns are reduced densely
   with ``topk`` instead.

Every point left out of a row's list has an expansion value ``≥`` the largest kept one (a point
is rejected only when it is ``≥`` the current threshold, and thresholds only decrease), which is
what the certificate in :mod:`knnlab.knn.core` needs. The values are rounded once more than in
the one-sided path (the ``‖x_i‖² + ‖x_j‖²`` sum), which the caller adds to its error bound.
"""

from __future__ import annotations

import itertools
import math

import torch

__all__ = ["block_size", "symmetric_candidates"]

#: Bytes of working memory per element of the ``b × b`` block: the float32 block (4), a boolean
#: mask (1); then either the sparse hits (counted first, materialised only when at most ``b²/16``,
#: of 16 bytes: 1), their values, sort order and regrouped copies (≤ 3) and the padded merge
#: buffer (at most ``b²/16`` slots of 12 bytes: < 1), or the dense reduction's contiguous copy of
#: the transposed block (4). Measured peak at a 64 MiB budget, all hits: 50 MiB (test_symmetric).
_BYTES_PER_ELEMENT = 12
#: At most ``b² / _HIT_DIVISOR`` sparse hits per block; beyond, the block is reduced with ``topk``.
_HIT_DIVISOR = 16


def block_size(budget: int) -> int:
    """Side of the square distance block that fits in ``budget`` bytes."""
    return max(1, math.isqrt(budget // _BYTES_PER_ELEMENT))


def _bounds(n: int, b: int) -> list[int]:
    """Boundaries of ``⌈n / b⌉`` blocks of nearly equal size (each ``≤ b``)."""
    nb = max(1, -(-n // b))
    return [round(i * n / nb) for i in range(nb + 1)]


def usable(n: int, kk: int, budget: int) -> bool:
    """Whether every block holds at least ``kk + 1`` points (so a diagonal block gives ``kk``)."""
    bounds = _bounds(n, block_size(budget))
    return min(e - s for s, e in itertools.pairwise(bounds)) >= kk + 1


def _merge(
    best_v: torch.Tensor,
    best_i: torch.Tensor,
    thr: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    vals: torch.Tensor,
    limit: int,
) -> bool:
    """Merge new candidates ``(rows, cols, vals)`` (``rows`` ascending) into the running lists.

    ``best_v``, ``best_i``, ``thr`` are views on the rows of one block. Returns False (and changes
    nothing) when the padded merge buffer would exceed ``limit`` elements.
    """
    if rows.numel() == 0:
        return True
    hit, counts = torch.unique_consecutive(rows, return_counts=True)
    width = int(counts.max())
    if hit.numel() * width > limit:
        return False
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(rows.numel(), device=rows.device) - torch.repeat_interleave(starts, counts)
    which = torch.repeat_interleave(torch.arange(hit.numel(), device=rows.device), counts)
    dv = torch.full((hit.numel(), width), math.inf, dtype=vals.dtype, device=vals.device)
    di = torch.full((hit.numel(), width), -1, dtype=torch.int64, device=vals.device)
    dv[which, slot] = vals
    di[which, slot] = cols
    _put(best_v, best_i, thr, hit, torch.cat([best_v[hit], dv], 1), torch.cat([best_i[hit], di], 1))
    return True


def _put(
    best_v: torch.Tensor,
    best_i: torch.Tensor,
    thr: torch.Tensor,
    hit: torch.Tensor | None,
    v: torch.Tensor,
    i: torch.Tensor,
) -> None:
    """Keep the ``kk`` smallest of ``v`` per row (with indices ``i``) for rows ``hit`` (None: all)."""
    kk = best_v.shape[1]
    tv, pos = torch.topk(v, kk, dim=1, largest=False, sorted=False)
    ti = i.gather(1, pos)
    if hit is None:
        best_v.copy_(tv)
        best_i.copy_(ti)
        thr.copy_(tv.max(1).values)
    else:
        best_v[hit] = tv
        best_i[hit] = ti
        thr[hit] = tv.max(1).values


def _dense(
    best_v: torch.Tensor,
    best_i: torch.Tensor,
    thr: torch.Tensor,
    blk: torch.Tensor,
    col0: int,
) -> None:
    """Merge all of ``blk`` (rows: this block's rows, columns: points ``col0 …``) by ``topk``."""
    kc = min(best_v.shape[1], blk.shape[1])
    v, i = torch.topk(blk, kc, dim=1, largest=False, sorted=False)
    _put(best_v, best_i, thr, None, torch.cat([best_v, v], 1), torch.cat([best_i, i + col0], 1))


def symmetric_candidates(
    x32: torch.Tensor, kk: int, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``kk`` (smallest) of the float32 expansion of every point against all others.

    Returns ``(values, indices)`` of shape ``(N, kk)``: the expansion values (both squared norms
    included) and the indices, unsorted. Needs ``usable(N, kk, budget)``.
    """
    n = x32.shape[0]
    dev = x32.device
    sq = torch.linalg.vector_norm(x32, dim=1).square_()
    b = block_size(budget)
    bounds = _bounds(n, b)
    blocks = list(itertools.pairwise(bounds))
    if min(e - s for s, e in blocks) < kk + 1:
        raise ValueError("blocks smaller than kk + 1; check usable() first")
    bmax = max(e - s for s, e in blocks)
    buf = torch.empty(bmax * bmax, dtype=torch.float32, device=dev)
    limit = max(1, bmax * bmax // _HIT_DIVISOR)
    best_v = torch.empty((n, kk), dtype=torch.float32, device=dev)
    best_i = torch.empty((n, kk), dtype=torch.int64, device=dev)
    thr = torch.empty(n, dtype=torch.float32, device=dev)

    def block(s0: int, e0: int, s1: int, e1: int) -> torch.Tensor:
        d = buf[: (e0 - s0) * (e1 - s1)].view(e0 - s0, e1 - s1)
        torch.add(sq[s0:e0, None], sq[None, s1:e1], out=d)
        d.addmm_(x32[s0:e0], x32[s1:e1].T, alpha=-2.0)
        return d

    # 1. diagonal blocks: every row gets kk finite candidates
    for s, e in blocks:
        d = block(s, e, s, e)
        d.diagonal().fill_(math.inf)
        v, i = torch.topk(d, kk, dim=1, largest=False, sorted=False)
        best_v[s:e], best_i[s:e] = v, i + s
        thr[s:e] = v.max(1).values

    # 2. off-diagonal blocks, each used for its rows and its columns
    for a, (s0, e0) in enumerate(blocks):
        for s1, e1 in blocks[a + 1 :]:
            d = block(s0, e0, s1, e1)
            # rows of I: topk along the rows
            _dense(best_v[s0:e0], best_i[s0:e0], thr[s0:e0], d, s1)
            # rows of J: entries below the column's threshold, grouped by column
            m1 = d < thr[None, s1:e1]
            # count before materialising: nonzero() costs 16 bytes a hit, up to b² hits
            if int(torch.count_nonzero(m1)) > limit:
                _dense(best_v[s1:e1], best_i[s1:e1], thr[s1:e1], d.T, s0)
                continue
            hits = torch.nonzero(m1)
            r1, c1 = hits[:, 0], hits[:, 1]
            v1 = d[r1, c1]
            order = torch.sort(c1, stable=True).indices
            ok = _merge(
                best_v[s1:e1],
                best_i[s1:e1],
                thr[s1:e1],
                c1[order],
                r1[order] + s0,
                v1[order],
                limit,
            )
            if not ok:
                _dense(best_v[s1:e1], best_i[s1:e1], thr[s1:e1], d.T, s0)
    return best_v, best_i
