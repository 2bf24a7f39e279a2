"""N³ aggregation on images: ``n3_aggregate`` (pure function) and ``N3Aggregation`` (module).

Plötz & Roth, "Neural Nearest Neighbors Networks", NeurIPS 2018, Sec. 4 (the N³ block for images),
following the authors' released code where the two differ (see :mod:`knnlab.n3.continuous_knn`).

Memory. Gathering every candidate patch needs ``Q·M·C·p²`` floats (about 7.5 GB for one 8-channel
512×512 map). Here the query grid is cut into tiles; the windows of a tile's queries all lie in a small
block of the patch grid (the *union*), so distances are one batched matrix product of the tile's
embedding patches with the union's, and the neighbour volumes are one batched product of the tile's
(scattered, dense) weights with the union's image patches, folded straight into the output image.
Custom backward passes redo the same tiled products, so nothing of size ``Q·M·p²`` is ever stored:
extra memory is ``O(B·Q·M·k)`` (the weights) plus ``O(B·k·C·H·W)`` (the output) plus one tile.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from knnlab.errors import InputError
from knnlab.n3.continuous_knn import RELAXATIONS, continuous_knn_weights
from knnlab.n3.patches import PatchGrid, Tile

__all__ = ["N3Aggregation", "n3_aggregate"]


@lru_cache(maxsize=4)
def _grid_tiles(h: int, w: int, p: int, s: int, win: int, tile: int, device: str):
    grid = PatchGrid(h, w, p, s, win)
    tiles = [
        Tile(t.i0, t.i1, t.j0, t.j1, t.r0, t.r1, t.c0, t.c1, t.local.to(device))
        for t in grid.tiles(tile)
    ]
    return grid, tiles


def _choose_tile(grid: PatchGrid, work_per_mac_pair: int, device_type: str = "cpu") -> int:
    """Tile side minimising (wasted) matrix-product work plus a per-tile overhead.

    Cost model: ``Σ_tiles tq·U`` multiply-adds (times ``work_per_mac_pair``) at ~2e10/s on CPU
    (~1e13/s on GPU), plus ~0.3 ms per tile of Python/launch overhead. Small tiles waste less
    (``U`` close to ``M``) but run more, smaller products. Any tile gives the same result.
    """
    rate = 1e13 if device_type == "cuda" else 2e10
    best, best_cost = 1, math.inf
    n = max(grid.n1, grid.n2)
    win = grid.window
    for t in sorted({1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, n}):
        if t > n:
            continue
        nt1, nt2 = math.ceil(grid.n1 / t), math.ceil(grid.n2 / t)
        u = (min(t + win - 1, grid.n1)) * (min(t + win - 1, grid.n2))
        cost = grid.Q * u * work_per_mac_pair / rate + nt1 * nt2 * 3e-4
        if cost < best_cost:
            best, best_cost = t, cost
    return best


class _WindowDistances(torch.autograd.Function):
    """``Ep (B, n1, n2, De)`` → ``D (B, n1, n2, M)``: squared L2 to every candidate in the window."""

    @staticmethod
    def forward(ctx, ep: Tensor, tiles: list[Tile], m: int) -> Tensor:
        b, n1, n2, de = ep.shape
        sq = (ep * ep).sum(-1)  # (B, n1, n2)
        d = ep.new_empty(b, n1, n2, m)
        for t in tiles:
            ti, tj = t.i1 - t.i0, t.j1 - t.j0
            eq = ep[:, t.i0 : t.i1, t.j0 : t.j1].reshape(b, t.tq, de)
            eu = ep[:, t.r0 : t.r1, t.c0 : t.c1].reshape(b, t.union, de)
            full = torch.baddbmm(
                sq[:, t.r0 : t.r1, t.c0 : t.c1].reshape(b, 1, t.union),
                eq,
                eu.transpose(1, 2),
                alpha=-2,
            )  # (B, tq, U): |e_c|² − 2 e_q·e_c
            dt = full.gather(2, t.local.expand(b, -1, -1)) + sq[
                :, t.i0 : t.i1, t.j0 : t.j1
            ].reshape(b, t.tq, 1)
            d[:, t.i0 : t.i1, t.j0 : t.j1] = dt.view(b, ti, tj, m)
        ctx.save_for_backward(ep)
        ctx.tiles = tiles
        return d

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        (ep,) = ctx.saved_tensors
        b, de = ep.shape[0], ep.shape[-1]
        ge = torch.zeros_like(ep)
        for t in ctx.tiles:
            ti, tj = t.i1 - t.i0, t.j1 - t.j0
            ur, uc = t.r1 - t.r0, t.c1 - t.c0
            gt = g[:, t.i0 : t.i1, t.j0 : t.j1].reshape(b, t.tq, -1)
            dense = ep.new_zeros(b, t.tq, t.union).scatter_(2, t.local.expand(b, -1, -1), gt)
            eq = ep[:, t.i0 : t.i1, t.j0 : t.j1].reshape(b, t.tq, de)
            eu = ep[:, t.r0 : t.r1, t.c0 : t.c1].reshape(b, t.union, de)
            # d = |e_q − e_c|²: ∂/∂e_q = 2(e_q − e_c), ∂/∂e_c = 2(e_c − e_q)
            gq = torch.baddbmm(eq * dense.sum(2, keepdim=True), dense, eu, alpha=-1)
            gu = torch.baddbmm(eu * dense.sum(1).unsqueeze(-1), dense.transpose(1, 2), eq, alpha=-1)
            ge[:, t.i0 : t.i1, t.j0 : t.j1] += 2 * gq.view(b, ti, tj, de)
            ge[:, t.r0 : t.r1, t.c0 : t.c1] += 2 * gu.view(b, ur, uc, de)
        return ge, None, None


class _WindowAggregate(torch.autograd.Function):
    """Weights ``(B, n1, n2, k, M)`` and image patches ``Xp (B, n1, n2, C·p²)`` → the sum of the
    weighted candidate patches folded onto the padded image, ``(B, k·C, Hp, Wp)`` (not yet divided by
    the patch counts)."""

    @staticmethod
    def forward(ctx, wts: Tensor, xp: Tensor, tiles: list[Tile], p: int, s: int, hp: int, wp: int):
        b, k, m = wts.shape[0], wts.shape[3], wts.shape[4]
        dx = xp.shape[-1]
        out = xp.new_zeros(b, k * dx // (p * p), hp, wp)
        for t in tiles:
            ti, tj = t.i1 - t.i0, t.j1 - t.j0
            wt = wts[:, t.i0 : t.i1, t.j0 : t.j1].reshape(b, t.tq, k, m)
            idx = t.local.view(1, t.tq, 1, m).expand(b, t.tq, k, m)
            dense = wts.new_zeros(b, t.tq, k, t.union).scatter_(3, idx, wt)
            xu = xp[:, t.r0 : t.r1, t.c0 : t.c1].reshape(b, t.union, dx)
            z = torch.bmm(dense.view(b, t.tq * k, t.union), xu)  # (B, tq·k, C·p²)
            z = z.view(b, t.tq, k * dx).transpose(
                1, 2
            )  # (B, k·C·p², tq), tq row-major over (ti, tj)
            h, w = (ti - 1) * s + p, (tj - 1) * s + p
            y0, x0 = t.i0 * s, t.j0 * s
            out[:, :, y0 : y0 + h, x0 : x0 + w] += F.fold(z, (h, w), p, stride=s)
        ctx.save_for_backward(wts, xp)
        ctx.tiles, ctx.p, ctx.s = tiles, p, s
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        wts, xp = ctx.saved_tensors
        p, s = ctx.p, ctx.s
        b, k, m = wts.shape[0], wts.shape[3], wts.shape[4]
        dx = xp.shape[-1]
        need_w, need_x = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gw = torch.zeros_like(wts) if need_w else None
        gx = torch.zeros_like(xp) if need_x else None
        for t in ctx.tiles:
            ti, tj = t.i1 - t.i0, t.j1 - t.j0
            ur, uc = t.r1 - t.r0, t.c1 - t.c0
            h, w = (ti - 1) * s + p, (tj - 1) * s + p
            y0, x0 = t.i0 * s, t.j0 * s
            gt = F.unfold(g[:, :, y0 : y0 + h, x0 : x0 + w], p, stride=s)  # (B, k·C·p², tq)
            gt = gt.transpose(1, 2).reshape(b, t.tq * k, dx)
            xu = xp[:, t.r0 : t.r1, t.c0 : t.c1].reshape(b, t.union, dx)
            idx = t.local.view(1, t.tq, 1, m).expand(b, t.tq, k, m)
            if gw is not None:
                gd = torch.bmm(gt, xu.transpose(1, 2)).view(b, t.tq, k, t.union)
                gw[:, t.i0 : t.i1, t.j0 : t.j1] = gd.gather(3, idx).view(b, ti, tj, k, m)
            if gx is not None:
                wt = wts[:, t.i0 : t.i1, t.j0 : t.j1].reshape(b, t.tq, k, m)
                dense = wts.new_zeros(b, t.tq, k, t.union).scatter_(3, idx, wt)
                gu = torch.bmm(dense.view(b, t.tq * k, t.union).transpose(1, 2), gt)
                gx[:, t.r0 : t.r1, t.c0 : t.c1] += gu.view(b, ur, uc, dx)
        return gw, gx, None, None, None, None, None


def _check_inputs(
    x: Tensor, embedding: Tensor, log_temperature: Tensor | None, k: int, relaxation: str
):
    if x.dim() != 4:
        raise InputError(f"`x` must be (B, C, H, W); got shape {tuple(x.shape)}")
    if (
        embedding.dim() != 4
        or embedding.shape[0] != x.shape[0]
        or embedding.shape[2:] != x.shape[2:]
    ):
        raise InputError(
            f"`embedding` must be (B, E, H, W) with B, H, W of `x` {tuple(x.shape)}; "
            f"got {tuple(embedding.shape)}"
        )
    if log_temperature is not None and (
        log_temperature.dim() != 4
        or log_temperature.shape[1] != 1
        or log_temperature.shape[0] != x.shape[0]
        or log_temperature.shape[2:] != x.shape[2:]
    ):
        raise InputError(
            f"`log_temperature` must be (B, 1, H, W) with B, H, W of `x` {tuple(x.shape)}; "
            f"got {tuple(log_temperature.shape)}"
        )
    if relaxation not in RELAXATIONS:
        raise InputError(f"`relaxation`={relaxation!r} is not one of {RELAXATIONS}")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"`k`={k!r} must be a positive integer")


def n3_aggregate(
    x: Tensor,
    embedding: Tensor,
    log_temperature: Tensor | None,
    k: int,
    *,
    patch_size: int = 10,
    stride: int = 5,
    window: int = 15,
    relaxation: str = "reference",
    distance_norm: nn.Module | None = None,
    log_temperature_offset: float = 0.0,
    tile: int | None = None,
) -> Tensor:
    """The ``k`` neural-nearest-neighbour volumes of an image (N³ aggregation, Sec. 4 of the paper).

    Args:
        x: ``(B, C, H, W)`` the image (features) to aggregate.
        embedding: ``(B, E, H, W)`` the embedding in which patches are matched.
        log_temperature: ``(B, 1, H, W)`` per-pixel log temperature, or ``None`` for ``T = 1``.
        k: number of neighbour volumes.
        patch_size, stride: patches of ``patch_size²`` pixels every ``stride`` pixels.
        window: candidates of a query are the ``window × window`` patches of the grid around it,
            shifted to stay inside the grid at the borders, the query excluded (``window² − 1``).
        relaxation: ``"reference"`` (released code, default), ``"paper"`` (Eq. 9) or ``"hard"``.
        distance_norm: optional module applied to the negated distances ``−d`` viewed as
            ``(B, 1, Q·M)`` before the division by the temperature (the released ``BatchNorm1d(1)``).
        log_temperature_offset: constant added to each query's log temperature after averaging over
            its patch (the released models use ``log 0.1``; :class:`~knnlab.n3.N3Block` passes it).
        tile: side of the query tiles (``None``: chosen by a cost model; any value gives the same
            result).

    Returns:
        ``(B, k, C, H, W)``: neighbour volume ``t``, each patch replaced by the ``t``-th relaxed
        neighbour of the embedding-space patch, folded back averaging overlapping patches.

    Details (as in the released code): ``x``, ``embedding`` and ``log_temperature`` are zero-padded
    so that the patches tile the image (extra rows split floor/ceil between top and bottom, likewise
    columns) and the result is cropped back; the distance is the squared L2 over all ``E·p²`` entries;
    a query's temperature is ``exp(mean of the padded log_temperature over its patch + offset)``;
    logits are ``distance_norm(−d) / T``. The patch grid must hold ``window × window`` patches: at the
    defaults images need at least 76×76 pixels (padded to 80×80); smaller ones raise
    :class:`~knnlab.errors.InputError` naming the minimum.
    """
    _check_inputs(x, embedding, log_temperature, k, relaxation)
    b, c, h, w = x.shape
    p, s = patch_size, stride
    grid = PatchGrid(h, w, p, s, window)  # validates the size
    if k > grid.M:
        raise InputError(f"`k`={k} is larger than the number of candidates window²−1={grid.M}")
    if tile is None:
        tile = _choose_tile(grid, b * max(k * c, embedding.shape[1]) * p * p, x.device.type)
    grid, tiles = _grid_tiles(h, w, p, s, window, int(tile), str(x.device))
    top, bottom, left, right = grid.pad
    hp, wp = grid.padded_size
    n1, n2, m = grid.n1, grid.n2, grid.M

    def patches(t: Tensor) -> Tensor:  # (B, ch, H, W) -> (B, n1, n2, ch·p²)
        t = F.pad(t, (left, right, top, bottom))
        return F.unfold(t, p, stride=s).transpose(1, 2).reshape(b, n1, n2, -1)

    d = _WindowDistances.apply(patches(embedding), tiles, m)  # (B, n1, n2, M)
    a = -d
    if distance_norm is not None:
        a = distance_norm(a.reshape(b, 1, -1)).reshape(b, n1, n2, m)
    if log_temperature is None:
        log_t = x.new_zeros(b, n1, n2, 1)
    else:
        lt = F.pad(log_temperature, (left, right, top, bottom))
        log_t = F.avg_pool2d(lt, p, stride=s).reshape(b, n1, n2, 1)  # mean over each patch
    temperature = torch.exp(log_t + log_temperature_offset)
    wts = continuous_knn_weights(a / temperature, k, relaxation=relaxation, temperature=temperature)

    out = _WindowAggregate.apply(wts, patches(x), tiles, p, s, hp, wp)  # (B, k·C, Hp, Wp)
    ones = x.new_ones(1, p * p, grid.Q)
    out = out / F.fold(ones, (hp, wp), p, stride=s)
    return out[:, :, top : hp - bottom, left : wp - right].reshape(b, k, c, h, w)


class N3Aggregation(nn.Module):
    """Module form of :func:`n3_aggregate`; holds the configuration and the optional distance norm.

    ``distance_norm=True`` creates the released ``BatchNorm1d(1)`` over all negated distances as the
    submodule ``distance_norm`` (its parameters and statistics are the checkpoints'
    ``n3aggregation.aggregation.nnn.bn.*``); a module may be passed instead, or ``None``/``False``.
    """

    def __init__(
        self,
        k: int = 7,
        patch_size: int = 10,
        stride: int = 5,
        window: int = 15,
        relaxation: str = "reference",
        distance_norm: bool | nn.Module | None = None,
        log_temperature_offset: float = 0.0,
    ) -> None:
        super().__init__()
        if relaxation not in RELAXATIONS:
            raise InputError(f"`relaxation`={relaxation!r} is not one of {RELAXATIONS}")
        self.k, self.patch_size, self.stride, self.window = k, patch_size, stride, window
        self.relaxation = relaxation
        self.log_temperature_offset = float(log_temperature_offset)
        if distance_norm is True:
            distance_norm = nn.BatchNorm1d(1)
        self.distance_norm = distance_norm or None

    def forward(
        self, x: Tensor, embedding: Tensor, log_temperature: Tensor | None = None
    ) -> Tensor:
        return n3_aggregate(
            x,
            embedding,
            log_temperature,
            self.k,
            patch_size=self.patch_size,
            stride=self.stride,
            window=self.window,
            relaxation=self.relaxation,
            distance_norm=self.distance_norm,
            log_temperature_offset=self.log_temperature_offset,
        )

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, patch_size={self.patch_size}, stride={self.stride}, window={self.window}, "
            f"relaxation={self.relaxation!r}, log_temperature_offset={self.log_temperature_offset:.4g}"
        )
