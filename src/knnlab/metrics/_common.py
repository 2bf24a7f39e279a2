"""Shared helpers of the feature-space metrics: input checks and memory-bounded ball tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError

__all__ = ["as_features", "ball_membership", "exact_sq_dist", "kth_radii"]

_U32 = 2.0**-24  # unit roundoff of float32
# Default bytes for the temporary (points x centres) blocks of the ball test.
_DEFAULT_BUDGET = 512 * 2**20


def as_features(x: Any, name: str, *, min_rows: int = 1) -> torch.Tensor:
    """A float32 ``(N, d)`` tensor (numpy or torch input; a torch input keeps its device)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if arr.dtype == object:
            raise InputError(f"{name} must be a numeric array (N, d)")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.ndim != 2:
        raise InputError(f"{name} must be a feature matrix (N, d); got shape {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise InputError(f"{name} needs at least {min_rows} rows; got {t.shape[0]}")
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"{name} contains NaN or infinite values")
    return t.contiguous()


def _check_pair(real: torch.Tensor, fake: torch.Tensor) -> None:
    if real.shape[1] != fake.shape[1]:
        raise InputError(
            f"real and fake features have different dimensions: {real.shape[1]} vs {fake.shape[1]}"
        )


def exact_sq_dist(
    a: torch.Tensor, b: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor
) -> torch.Tensor:
    """Squared L2 distances ``||a[ia] - b[ib]||²`` in float64 by direct differences (no
    ``|a|² + |b|² - 2ab`` cancellation), in batches; identical pairs give identical values."""
    out = torch.empty(ia.shape[0], dtype=torch.float64, device=a.device)
    d = max(int(a.shape[1]), 1)
    step = max(1, (64 * 2**20) // (8 * d))
    for s in range(0, ia.shape[0], step):
        da = a[ia[s : s + step]].to(torch.float64) - b[ib[s : s + step]].to(torch.float64)
        out[s : s + step] = (da * da).sum(1)
    return out


def kth_radii(
    x: torch.Tensor, k: int, *, backend: str = "auto", memory_budget: int | None = None
) -> torch.Tensor:
    """Squared distance (float64, computed exactly from the found neighbour) of every row of ``x``
    to its k-th nearest neighbour in ``x`` other than itself."""
    from knnlab import knn

    if not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer; got {k!r}")
    if x.shape[0] <= k:
        raise InputError(f"needs more than k = {k} samples; got {x.shape[0]}")
    _, idx = knn.search(
        x, x, int(k), exclude_self=True, backend=backend, memory_budget=memory_budget
    )
    idx_t = torch.as_tensor(idx).to(x.device)[:, k - 1].long()
    rows = torch.arange(x.shape[0], device=x.device)
    return exact_sq_dist(x, x, rows, idx_t)


def ball_membership(
    points: torch.Tensor,
    centers: torch.Tensor,
    radii: torch.Tensor,
    *,
    count: bool = False,
    strict: bool = False,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """For each point, whether it lies in any ball ``||p - c_j||² <= radii[j]`` (``count=False``,
    bool) or in how many (``count=True``, int64). Closed balls (``<=``) by default, open balls
    (``<``) with ``strict=True``.

    Chunked over points and centres: never more than ``memory_budget`` bytes of temporaries. A
    float32 GEMM decides every pair farther than a safety margin from its ball's boundary; pairs
    inside the margin are recomputed exactly in float64 (direct differences), so ties — equal
    points, a point exactly at the radius — follow the exact ``<=`` (or ``<``). The margin is the
    worst-case float32 error of the expansion at the feature dimension ``d``,
    ``(d + 8)·u·1.01·(‖p‖ + ‖c‖)²`` (``u = 2⁻²⁴``; Higham's ``γ_{d+2}`` for ``‖p‖² + ‖c‖² − 2 p·c``
    plus the float32 rounding of the centred inputs, their norms and the radius).
    """
    budget = _DEFAULT_BUDGET if memory_budget is None else int(memory_budget)
    dev = points.device
    centers = centers.to(dev)
    radii = radii.to(dev, torch.float64)
    n, m = points.shape[0], centers.shape[0]
    if count:
        result = torch.zeros(n, dtype=torch.int64, device=dev)
    else:
        result = torch.zeros(n, dtype=torch.bool, device=dev)
    if n == 0 or m == 0:
        return result
    # Centre on the centres' mean: distances are unchanged, the GEMM's cancellation error shrinks.
    shift = centers.to(torch.float64).mean(0)
    p32 = (points.to(torch.float64) - shift).to(torch.float32)
    c32 = (centers.to(torch.float64) - shift).to(torch.float32)
    pn = (p32.to(torch.float64) ** 2).sum(1)
    cn = (c32.to(torch.float64) ** 2).sum(1)
    rad32 = radii.to(torch.float32)
    # ~ 4 bytes (d2) + 3 bools + a few float temporaries per pair
    per_pair = 24
    cb = int(min(m, max(1024, budget // (per_pair * 4096))))
    pb = int(max(1, min(n, budget // (per_pair * cb))))
    gamma = (points.shape[1] + 8) * _U32 * 1.01
    prec = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32: the margin assumes float32 products
    try:
        _ball_blocks(
            points, centers, radii, p32, c32, pn, cn, rad32, result, count, strict, gamma, pb, cb
        )
    finally:
        torch.set_float32_matmul_precision(prec)
    return result


def _ball_blocks(
    points: torch.Tensor,
    centers: torch.Tensor,
    radii: torch.Tensor,
    p32: torch.Tensor,
    c32: torch.Tensor,
    pn: torch.Tensor,
    cn: torch.Tensor,
    rad32: torch.Tensor,
    result: torch.Tensor,
    count: bool,
    strict: bool,
    gamma: float,
    pb: int,
    cb: int,
) -> None:
    """``pn, cn``: float64 squared norms of the centred float32 points and centres."""
    n, m = p32.shape[0], c32.shape[0]
    pn32, cn32 = pn.to(torch.float32), cn.to(torch.float32)
    # error bound per pair: gamma (‖p‖ + ‖c‖)², plus the float32 rounding of the radius
    pr = pn.sqrt().to(torch.float32)
    cr = cn.sqrt().to(torch.float32)
    for ps in range(0, n, pb):
        pe = min(n, ps + pb)
        P = p32[ps:pe]
        acc = result[ps:pe]
        for cs in range(0, m, cb):
            ce = min(m, cs + cb)
            if not count and bool(acc.all()):
                break
            d2 = torch.addmm(pn32[ps:pe, None] + cn32[None, cs:ce], P, c32[cs:ce].T, alpha=-2.0)
            r = rad32[None, cs:ce]
            margin = (pr[ps:pe, None] + cr[None, cs:ce]).square_().mul_(gamma)
            margin.add_(r.abs() * (4 * _U32) + 1e-30)
            sure = d2 < r - margin
            unsure = (d2 - r).abs_() <= margin
            if count:
                acc += sure.sum(1)
            else:
                acc |= sure.any(1)
                unsure &= ~acc[:, None]
            pi, ci = torch.nonzero(unsure, as_tuple=True)
            if pi.numel():
                exd = exact_sq_dist(points, centers, pi + ps, ci + cs)
                ex = exd < radii[ci + cs] if strict else exd <= radii[ci + cs]
                if count:
                    acc.index_add_(0, pi, ex.to(torch.int64))
                else:
                    acc[pi[ex]] = True
            del d2, margin, sure, unsure
