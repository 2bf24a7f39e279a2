"""Triton kernels for the multi-resolution hash grid of :mod:`knnlab.bright.hashgrid`.

The same encoding as the pure-PyTorch path there (tcnn's ``HashGrid``: level scales, dense or
hashed corner indices in uint32 arithmetic modulo the table size, d-linear weights, the tables
stacked in one ``params (Σ T_l, F)``), as two kernels with one program per block of points that
loops over the levels:

- forward: per level and corner, gather the corner's F features from ``params`` and add them,
  weighted, into ``out[n, l·F + f]``;
- backward: ``tl.atomic_add`` of ``w·g`` into the table rows (the order of the additions varies,
  so the params gradient equals the torch path's up to float32 rounding), and the input gradient
  ``scale · Σ_k ∂w_k/∂frac_i · <f_k, g>`` summed over the levels in registers.

Inputs and tables are float32; d is 1 … 4. triton is optional and imported here only, when this
module is first imported (``hashgrid.py`` imports it lazily). The kernels run on CUDA tensors, or
on CPU tensors through Triton's interpreter when ``TRITON_INTERPRET=1`` is set before ``triton``
is first imported: Triton reads the flag when it decorates a function, its own library's included,
so setting it later leaves a mix of compiled and interpreted functions that cannot run.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any

import torch

from knnlab.bright.hashgrid import PRIMES, HashGridConfig, check_inputs, level_layout
from knnlab.errors import InputError

try:
    import triton
    import triton.language as tl
except ImportError:  # the kernels below stay plain functions that are never launched
    triton = None
    tl = None

__all__ = ["hash_grid_triton", "triton_available"]

_BLOCK = 128  # points per program


def _jit(fn: Any) -> Any:
    return fn if triton is None else triton.jit(fn)


# --------------------------------------------------------------------------- device helpers


@_jit
def _block(n, F: tl.constexpr, FP: tl.constexpr, BLOCK: tl.constexpr):
    """This program's point rows (int64) with their mask, and the feature columns (F of FP
    padded) with the (rows, columns) mask."""
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = rows < n
    cols = tl.arange(0, FP)
    return rows.to(tl.int64), mask, cols, mask[:, None] & (cols < F)[None, :]


@_jit
def _load_point(x_ptr, rows, mask, D: tl.constexpr):
    """Coordinates ``(BLOCK,)`` of dims 0 … 3 of ``x (N, D)``; dims ≥ D repeat dim 0 (unused)."""
    x0 = tl.load(x_ptr + rows * D, mask=mask, other=0.0)
    x1 = x0
    x2 = x0
    x3 = x0
    if D > 1:
        x1 = tl.load(x_ptr + rows * D + 1, mask=mask, other=0.0)
    if D > 2:
        x2 = tl.load(x_ptr + rows * D + 2, mask=mask, other=0.0)
    if D > 3:
        x3 = tl.load(x_ptr + rows * D + 3, mask=mask, other=0.0)
    return x0, x1, x2, x3


@_jit
def _cell(x, scale):
    """Grid cell (uint32, two's complement below 0) and fraction of ``pos = x·scale + 0.5``."""
    pos = x * scale + 0.5
    c = tl.floor(pos)
    return c.to(tl.int32).to(tl.uint32, bitcast=True), pos - c


@_jit
def _axis(f, BIT: tl.constexpr):
    """The d-linear factor of one dim: ``f`` for the high corner, ``1 − f`` for the low."""
    a = 1.0 - f
    if BIT:
        a = f
    return a


@_jit
def _daxis(f, BIT: tl.constexpr, SKIP: tl.constexpr):
    """``_axis``, or its derivative in ``f`` (±1) for the differentiated dim."""
    a = _axis(f, BIT)
    if SKIP:
        a = tl.zeros_like(f) + (2.0 * BIT - 1.0)
    return a


@_jit
def _corner_index(g0, g1, g2, g3, s0, s1, s2, s3, dense, size, K: tl.constexpr, D: tl.constexpr):
    """Table row (uint32) of corner ``K`` (bit i = offset along dim i): ``Σ c_i·s_i`` for a dense
    level (``s_i = res^i``), ``XOR_i c_i·s_i`` for a hashed one (``s_i = π_i``), mod ``size``."""
    t = (g0 + (K & 1)) * s0
    acc_sum = t
    acc_xor = t
    if D > 1:
        t = (g1 + ((K >> 1) & 1)) * s1
        acc_sum += t
        acc_xor ^= t
    if D > 2:
        t = (g2 + ((K >> 2) & 1)) * s2
        acc_sum += t
        acc_xor ^= t
    if D > 3:
        t = (g3 + ((K >> 3) & 1)) * s3
        acc_sum += t
        acc_xor ^= t
    return tl.where(dense != 0, acc_sum, acc_xor) % size


@_jit
def _corner_weight(f0, f1, f2, f3, K: tl.constexpr, I: tl.constexpr, D: tl.constexpr):
    """d-linear weight ``(BLOCK,)`` of corner ``K``, the factors multiplied in dim order; with
    ``I`` in 0 … D−1 its derivative in the fraction of dim ``I`` (``I = -1``: the weight)."""
    w = _daxis(f0, K & 1, I == 0)
    if D > 1:
        w = w * _daxis(f1, (K >> 1) & 1, I == 1)
    if D > 2:
        w = w * _daxis(f2, (K >> 2) & 1, I == 2)
    if D > 3:
        w = w * _daxis(f3, (K >> 3) & 1, I == 3)
    return w


@_jit
def _level(scale_ptr, off_ptr, size_ptr, dense_ptr, step_ptr, lvl):
    """Scalars of level ``lvl``: scale (f32), row offset (i64), size (u32), dense flag, steps."""
    scale = tl.load(scale_ptr + lvl)
    off = tl.load(off_ptr + lvl)
    size = tl.load(size_ptr + lvl).to(tl.uint32)
    dense = tl.load(dense_ptr + lvl)
    s0 = tl.load(step_ptr + lvl * 4).to(tl.uint32)
    s1 = tl.load(step_ptr + lvl * 4 + 1).to(tl.uint32)
    s2 = tl.load(step_ptr + lvl * 4 + 2).to(tl.uint32)
    s3 = tl.load(step_ptr + lvl * 4 + 3).to(tl.uint32)
    return scale, off, size, dense, s0, s1, s2, s3


@_jit
def _cells(x0, x1, x2, x3, scale, D: tl.constexpr):
    """``_cell`` of every used dim; unused dims repeat dim 0."""
    g0, f0 = _cell(x0, scale)
    g1, f1 = g0, f0
    g2, f2 = g0, f0
    g3, f3 = g0, f0
    if D > 1:
        g1, f1 = _cell(x1, scale)
    if D > 2:
        g2, f2 = _cell(x2, scale)
    if D > 3:
        g3, f3 = _cell(x3, scale)
    return g0, g1, g2, g3, f0, f1, f2, f3


# --------------------------------------------------------------------------- kernels


@_jit
def _forward_kernel(
    x_ptr, p_ptr, out_ptr,
    scale_ptr, off_ptr, size_ptr, dense_ptr, step_ptr,
    n, n_levels,
    D: tl.constexpr, F: tl.constexpr, FP: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """``out (N, L·F)`` from ``x (N, D)`` and ``params (Σ T_l, F)``; FP = F rounded up to 2^k."""
    rows, mask, cols, mask2 = _block(n, F, FP, BLOCK)
    x0, x1, x2, x3 = _load_point(x_ptr, rows, mask, D)
    for lvl in range(n_levels):
        scale, off, size, dense, s0, s1, s2, s3 = _level(
            scale_ptr, off_ptr, size_ptr, dense_ptr, step_ptr, lvl
        )
        g0, g1, g2, g3, f0, f1, f2, f3 = _cells(x0, x1, x2, x3, scale, D)
        acc = tl.zeros((BLOCK, FP), dtype=tl.float32)
        for k in tl.static_range(1 << D):
            idx = _corner_index(g0, g1, g2, g3, s0, s1, s2, s3, dense, size, k, D)
            w = _corner_weight(f0, f1, f2, f3, k, -1, D)
            row = off + idx.to(tl.int64)
            feat = tl.load(p_ptr + row[:, None] * F + cols[None, :], mask=mask2, other=0.0)
            acc += w[:, None] * feat
        dst = out_ptr + rows[:, None] * (n_levels * F) + lvl * F + cols[None, :]
        tl.store(dst, acc, mask=mask2)


@_jit
def _backward_kernel(
    x_ptr, p_ptr, go_ptr, gp_ptr, gx_ptr,
    scale_ptr, off_ptr, size_ptr, dense_ptr, step_ptr,
    n, n_levels,
    D: tl.constexpr, F: tl.constexpr, FP: tl.constexpr, BLOCK: tl.constexpr,
    NEED_X: tl.constexpr, NEED_P: tl.constexpr,
):  # fmt: skip
    """From ``grad_out (N, L·F)``: ``grad_params (Σ T_l, F)`` by atomic adds (NEED_P) and
    ``grad_x (N, D)`` (NEED_X)."""
    rows, mask, cols, mask2 = _block(n, F, FP, BLOCK)
    x0, x1, x2, x3 = _load_point(x_ptr, rows, mask, D)
    gx0 = tl.zeros((BLOCK,), dtype=tl.float32)
    gx1 = tl.zeros((BLOCK,), dtype=tl.float32)
    gx2 = tl.zeros((BLOCK,), dtype=tl.float32)
    gx3 = tl.zeros((BLOCK,), dtype=tl.float32)
    for lvl in range(n_levels):
        scale, off, size, dense, s0, s1, s2, s3 = _level(
            scale_ptr, off_ptr, size_ptr, dense_ptr, step_ptr, lvl
        )
        g0, g1, g2, g3, f0, f1, f2, f3 = _cells(x0, x1, x2, x3, scale, D)
        src = go_ptr + rows[:, None] * (n_levels * F) + lvl * F + cols[None, :]
        go = tl.load(src, mask=mask2, other=0.0)
        d0 = tl.zeros((BLOCK,), dtype=tl.float32)
        d1 = tl.zeros((BLOCK,), dtype=tl.float32)
        d2 = tl.zeros((BLOCK,), dtype=tl.float32)
        d3 = tl.zeros((BLOCK,), dtype=tl.float32)
        for k in tl.static_range(1 << D):
            idx = _corner_index(g0, g1, g2, g3, s0, s1, s2, s3, dense, size, k, D)
            at = (off + idx.to(tl.int64))[:, None] * F + cols[None, :]
            if NEED_P:
                w = _corner_weight(f0, f1, f2, f3, k, -1, D)
                tl.atomic_add(gp_ptr + at, w[:, None] * go, mask=mask2)
            if NEED_X:
                dot = tl.sum(tl.load(p_ptr + at, mask=mask2, other=0.0) * go, axis=1)
                d0 += _corner_weight(f0, f1, f2, f3, k, 0, D) * dot
                if D > 1:
                    d1 += _corner_weight(f0, f1, f2, f3, k, 1, D) * dot
                if D > 2:
                    d2 += _corner_weight(f0, f1, f2, f3, k, 2, D) * dot
                if D > 3:
                    d3 += _corner_weight(f0, f1, f2, f3, k, 3, D) * dot
        if NEED_X:
            gx0 += scale * d0
            gx1 += scale * d1
            gx2 += scale * d2
            gx3 += scale * d3
    if NEED_X:
        tl.store(gx_ptr + rows * D, gx0, mask=mask)
        if D > 1:
            tl.store(gx_ptr + rows * D + 1, gx1, mask=mask)
        if D > 2:
            tl.store(gx_ptr + rows * D + 2, gx2, mask=mask)
        if D > 3:
            tl.store(gx_ptr + rows * D + 3, gx3, mask=mask)


# --------------------------------------------------------------------------- host side


def _interpreted() -> bool:
    """Whether these kernels and triton's own library were built for its interpreter."""
    return all(type(f).__name__ == "InterpretedFunction" for f in (_forward_kernel, tl.zeros))


def triton_available(x: torch.Tensor) -> bool:
    """True when triton imports and ``x`` is on CUDA, or when ``TRITON_INTERPRET=1`` is set and
    was set when triton was first imported (its interpreter runs the kernels on CPU tensors)."""
    if triton is None:
        return False
    if x.device.type == "cuda":
        return True
    return os.environ.get("TRITON_INTERPRET", "0") == "1" and _interpreted()


@functools.lru_cache(maxsize=32)
def _level_tensors(
    layout: tuple[tuple[float, int, int, int, bool], ...], d: int, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Per-level ``scale (L,) f32, offset (L,) i64, size (L,) i64, dense (L,) i32,
    steps (L, 4) i64`` (``res^i`` for a dense level, the primes for a hashed one; 0 past d)."""
    steps = [
        [(res**i if dense else PRIMES[i]) if i < d else 0 for i in range(4)]
        for _, res, _, _, dense in layout
    ]
    return (
        torch.tensor([s for s, *_ in layout], dtype=torch.float32, device=device),
        torch.tensor([o for _, _, o, _, _ in layout], dtype=torch.int64, device=device),
        torch.tensor([t for _, _, _, t, _ in layout], dtype=torch.int64, device=device),
        torch.tensor([int(dn) for *_, dn in layout], dtype=torch.int32, device=device),
        torch.tensor(steps, dtype=torch.int64, device=device),
    )


def _on_device(x: torch.Tensor) -> contextlib.AbstractContextManager[Any]:
    """Make ``x``'s GPU the current one for a launch (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


def _sizes(n: int, n_features: int) -> tuple[tuple[int], int]:
    """Launch grid ``(programs,)`` and F rounded up to a power of two."""
    return (triton.cdiv(n, _BLOCK),), triton.next_power_of_2(n_features)


class _HashGridTritonFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, params, layout, n_features):
        n, d = x.shape
        levels = _level_tensors(layout, d, x.device)
        table = params.detach().contiguous()
        out = x.new_empty(n, len(layout) * n_features)
        grid, fp = _sizes(n, n_features)
        with _on_device(x):
            _forward_kernel[grid](
                x.detach(), table, out, *levels, n, len(layout),
                D=d, F=n_features, FP=fp, BLOCK=_BLOCK,
            )  # fmt: skip
        ctx.save_for_backward(x, table)
        ctx.layout, ctx.n_features = layout, n_features
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, table = ctx.saved_tensors
        need_x, need_p = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = torch.zeros_like(x) if need_x else None
        grad_p = torch.zeros_like(table) if need_p else None
        if need_x or need_p:
            n, d = x.shape
            layout, nf = ctx.layout, ctx.n_features
            grid, fp = _sizes(n, nf)
            with _on_device(x):
                _backward_kernel[grid](
                    x, table, grad_out.float().contiguous(),
                    grad_p if grad_p is not None else table,  # unused pointer when not needed
                    grad_x if grad_x is not None else x,
                    *_level_tensors(layout, d, x.device), n, len(layout),
                    D=d, F=nf, FP=fp, BLOCK=_BLOCK, NEED_X=need_x, NEED_P=need_p,
                )  # fmt: skip
        return grad_x, grad_p, None, None


def hash_grid_triton(x: torch.Tensor, params: torch.Tensor, cfg: HashGridConfig) -> torch.Tensor:
    """:func:`knnlab.bright.hashgrid.hash_grid` with the Triton kernels: points ``x (N, d)``
    float32 in [0, 1] and tables ``params (Σ T_l, F)`` float32 on one device → ``(N, L·F)``,
    differentiable in both."""
    if not triton_available(x):
        raise InputError(
            "hash_grid(backend='triton'): needs `pip install triton` and a CUDA input, or for "
            "CPU inputs TRITON_INTERPRET=1 set before triton is first imported; use "
            "backend='torch' otherwise"
        )
    check_inputs(x, params, cfg)
    if x.dtype != torch.float32 or params.dtype != torch.float32:
        raise InputError(
            f"hash_grid(backend='triton'): x is {x.dtype} and params {params.dtype}; the "
            "kernels take float32 only (cast them, or use backend='torch')"
        )
    if params.device != x.device:
        raise InputError(
            f"hash_grid(backend='triton'): x is on {x.device} and params on {params.device}; "
            "move both to one device"
        )
    layout = tuple(level_layout(cfg))
    return _HashGridTritonFn.apply(x.contiguous(), params, layout, cfg.n_features_per_level)
