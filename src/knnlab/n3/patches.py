"""Patch-grid geometry of the N³ block: padding, the search window of every query, and tiles.

An image ``(B, C, H, W)`` is zero-padded so that patches of ``patch_size`` at ``stride`` tile it exactly
(the released N³Net's ``calc_padding``: the missing rows are split floor/ceil between top and bottom,
likewise columns), giving a patch grid of ``n1 × n2`` patches. The candidates of the query patch at grid
position ``(i, j)`` are the patches of the ``window × window`` block of grid positions starting at
``(ci, cj) = (clamp(i − window // 2, 0, n1 − window), clamp(j − window // 2, 0, n2 − window))``: the
block is centred on the query where possible and *shifted*, not shrunk, at the borders, so every query has
``window² − 1`` candidates (itself excluded; it always lies inside its own block).

Candidates are numbered in row-major order of the block with the query skipped; all of
:mod:`knnlab.n3` uses this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from knnlab.errors import InputError

__all__ = ["PatchGrid", "min_image_size"]


def _pad_amount(size: int, patch_size: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding so that ``size`` is covered exactly by the strided patches."""
    total = (-(size - patch_size)) % stride
    return total // 2, total - total // 2


def min_image_size(patch_size: int, stride: int, window: int) -> int:
    """Smallest image side whose padded patch grid holds ``window`` patches (76 at 10/5/15)."""
    padded = (window - 1) * stride + patch_size
    return padded - (stride - 1)


@dataclass(frozen=True)
class PatchGrid:
    """Geometry of the strided patch grid of an ``H × W`` image and of the search windows.

    Attributes: ``pad = (top, bottom, left, right)``; ``n1, n2`` grid rows/columns; ``Q = n1·n2``
    queries; ``M = window² − 1`` candidates per query.
    """

    height: int
    width: int
    patch_size: int = 10
    stride: int = 5
    window: int = 15

    def __post_init__(self) -> None:
        p, s, w = self.patch_size, self.stride, self.window
        for name, v in (("patch_size", p), ("stride", s), ("window", w)):
            if not isinstance(v, int) or v < 1:
                raise InputError(f"`{name}`={v!r} must be a positive integer")
        if s > p:
            raise InputError(
                f"`stride`={s} is larger than `patch_size`={p}: patches would not cover the image; "
                "use stride <= patch_size"
            )
        if w < 2:
            raise InputError(
                f"`window`={w} must be at least 2 (a query needs a candidate besides itself)"
            )
        if self.n1 < w or self.n2 < w:
            m = min_image_size(p, s, w)
            padded = (w - 1) * s + p
            raise InputError(
                f"image of {self.height}×{self.width} is too small for the N³ patch grid: "
                f"patch_size={p}, stride={s}, window={w} need a grid of at least {w}×{w} patches, "
                f"i.e. images of at least {m}×{m} pixels (padded to {padded}×{padded}); "
                f"got a {self.n1}×{self.n2} grid. Pad or upscale the input, or use a smaller `window`."
            )

    @property
    def pad(self) -> tuple[int, int, int, int]:
        top, bottom = _pad_amount(self.height, self.patch_size, self.stride)
        left, right = _pad_amount(self.width, self.patch_size, self.stride)
        return top, bottom, left, right

    @property
    def padded_size(self) -> tuple[int, int]:
        t, b, l, r = self.pad
        return self.height + t + b, self.width + l + r

    @property
    def n1(self) -> int:
        return (self.padded_size[0] - self.patch_size) // self.stride + 1

    @property
    def n2(self) -> int:
        return (self.padded_size[1] - self.patch_size) // self.stride + 1

    @property
    def Q(self) -> int:
        return self.n1 * self.n2

    @property
    def M(self) -> int:
        return self.window**2 - 1

    def window_starts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ci (n1,), cj (n2,))``: first grid row / column of each query's window (int64)."""
        h = self.window // 2
        ci = (torch.arange(self.n1) - h).clamp(0, self.n1 - self.window)
        cj = (torch.arange(self.n2) - h).clamp(0, self.n2 - self.window)
        return ci, cj

    @cached_property
    def candidates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, cols)``, each ``(n1, n2, M)`` int64: grid position of every candidate of every query."""
        w = self.window
        ci, cj = self.window_starts()
        a = torch.arange(w)
        rows = (ci.view(-1, 1, 1, 1) + a.view(1, 1, w, 1)).expand(self.n1, self.n2, w, w)
        cols = (cj.view(1, -1, 1, 1) + a.view(1, 1, 1, w)).expand(self.n1, self.n2, w, w)
        i = torch.arange(self.n1).view(-1, 1, 1, 1)
        j = torch.arange(self.n2).view(1, -1, 1, 1)
        keep = ~((rows == i) & (cols == j))  # (n1, n2, w, w), exactly one False per query
        rows = rows[keep].view(self.n1, self.n2, self.M)
        cols = cols[keep].view(self.n1, self.n2, self.M)
        return rows, cols

    def flat_candidates(self) -> torch.Tensor:
        """``(Q, M)`` int64: flat grid index ``row * n2 + col`` of every candidate."""
        rows, cols = self.candidates
        return (rows * self.n2 + cols).view(self.Q, self.M)

    def tiles(self, tile: int) -> list[Tile]:
        """Split the query grid into ``tile × tile`` blocks; each knows the union of its windows."""
        ci, cj = self.window_starts()
        rows, cols = self.candidates
        out = []
        for i0 in range(0, self.n1, tile):
            i1 = min(i0 + tile, self.n1)
            r0, r1 = int(ci[i0]), int(ci[i1 - 1]) + self.window
            for j0 in range(0, self.n2, tile):
                j1 = min(j0 + tile, self.n2)
                c0, c1 = int(cj[j0]), int(cj[j1 - 1]) + self.window
                local = (rows[i0:i1, j0:j1] - r0) * (c1 - c0) + (cols[i0:i1, j0:j1] - c0)
                out.append(Tile(i0, i1, j0, j1, r0, r1, c0, c1, local.reshape(-1, self.M)))
        return out


@dataclass(frozen=True)
class Tile:
    """Queries ``[i0, i1) × [j0, j1)`` of the grid; their windows lie in ``[r0, r1) × [c0, c1)``.

    ``local`` ``(tq, M)`` int64: index of each candidate in the row-major flattened union block.
    """

    i0: int
    i1: int
    j0: int
    j1: int
    r0: int
    r1: int
    c0: int
    c1: int
    local: torch.Tensor

    @property
    def tq(self) -> int:
        return (self.i1 - self.i0) * (self.j1 - self.j0)

    @property
    def union(self) -> int:
        return (self.r1 - self.r0) * (self.c1 - self.c0)
