"""Multi-resolution hash grids exactly as tiny-cuda-nn's ``HashGrid`` encoding defines them.

Müller, Evans, Schied, Keller, "Instant Neural Graphics Primitives with a Multiresolution Hash
Encoding", SIGGRAPH 2022, Sec. 3 (Eq. 3 for the level scales, Eq. 4 for the spatial hash), with the
details of tiny-cuda-nn's ``encodings/grid.h``:

- level ``l`` (0 … L−1): ``scale_l = 2^(l·log2 b)·N_min − 1``, ``resolution_l = ceil(scale_l) + 1``;
  ``b`` is ``per_level_scale`` (or ``exp(ln(N_max/N_min)/(L−1))`` from ``finest_resolution``);
- ``pos = scale_l·x + 0.5``; its floor names the cell, its fraction gives d-linear weights of the
  2^d corners;
- table size ``T_l = min(next multiple of 8 of resolution_l^d, 2^log2_hashmap_size)``;
- a corner ``c`` (non-negative integers) is indexed densely, ``Σ_i c_i·resolution_l^i``, when
  ``resolution_l^d ≤ T_l``, else by ``XOR_i (c_i·π_i mod 2^32)`` with the primes
  π = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737); both are taken
  modulo ``T_l``. Corners at ``x = 1`` can step one past the last grid row; they wrap around through
  the modulo, as in tcnn;
- the tables of all levels are the rows of one ``params`` tensor ``(Σ_l T_l, F)`` with per-level
  offsets (tcnn's layout: a tcnn ``HashGrid``'s flat parameters reshaped to ``(-1, F)`` import as is),
  initialised U(−1e-4, 1e-4); the output is level-major, ``out[:, l·F + f]``.

How torch-ngp's ``GridEncoder`` (which the BRICS release used) differs:

- a dense level has stride ``resolution + 1`` per axis (``(resolution+1)^d`` entries) and its
  corners never wrap around;
- its table size is capped at ``2^log2_hashmap_size`` first and only then rounded up to a multiple
  of 8;
- inputs outside [0, 1] give zero features (tcnn extrapolates through the hash / modulo).

Backends: ``"torch"`` is the vectorised pure-PyTorch path here (one pass per level over all 2^d
corners at once, with a hand-written backward that recomputes indices and weights instead of
storing them, so the memory held for backward is the input only); ``"tcnn"`` wraps tinycudann
when it is importable and the input is on CUDA; ``"triton"`` runs the kernels of
:mod:`knnlab.bright.hashgrid_triton` (float32; triton is optional and imported only when this
backend is used; CUDA inputs, or CPU inputs with ``TRITON_INTERPRET=1`` set before triton is
imported), with the same outputs and gradients as torch up to float32 rounding; ``"auto"`` picks
tcnn when it can, else torch (it never picks triton: choose it by name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from knnlab.errors import InputError

__all__ = [
    "PRIMES",
    "HashGrid",
    "HashGridConfig",
    "check_inputs",
    "hash_grid",
    "level_layout",
    "level_scales",
    "level_usage",
]

#: tcnn's per-dimension hash primes (the first is 1, for cache coherence along x).
PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
_MASK = 0xFFFFFFFF
_BACKENDS = ("auto", "torch", "tcnn", "triton")
_CHUNK = 1 << 16  # points per pass of the torch path (bounds its temporaries)


@dataclass
class HashGridConfig:
    """One hash-grid encoding (tcnn's ``{"otype": "HashGrid", ...}``)."""

    n_input_dims: int = 3  # d, 1 … 4
    n_levels: int = 16  # L
    n_features_per_level: int = 2  # F
    log2_hashmap_size: int = 19  # log2 of the largest table size T
    base_resolution: int = 16  # N_min
    per_level_scale: float = 2.0  # b (ignored when finest_resolution is given)
    finest_resolution: float | None = None  # N_max: b = exp(ln(N_max / N_min) / (L − 1))

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InputError(f"HashGrid: {msg}")

        need(1 <= self.n_input_dims <= 4, f"n_input_dims={self.n_input_dims}; allowed 1 … 4")
        need(self.n_levels >= 1, f"n_levels={self.n_levels} must be >= 1")
        need(self.n_features_per_level >= 1, f"n_features_per_level={self.n_features_per_level}")
        need(
            1 <= self.log2_hashmap_size <= 30,
            f"log2_hashmap_size={self.log2_hashmap_size}; allowed 1 … 30",
        )
        need(self.base_resolution >= 1, f"base_resolution={self.base_resolution} must be >= 1")
        need(self.per_level_scale >= 1.0, f"per_level_scale={self.per_level_scale} must be >= 1")
        if self.finest_resolution is not None:
            need(
                self.finest_resolution >= self.base_resolution,
                f"finest_resolution={self.finest_resolution} must be >= base_resolution",
            )

    @property
    def growth(self) -> float:
        """The per-level scale b."""
        if self.finest_resolution is not None:
            if self.n_levels == 1:
                return 1.0
            return math.exp(
                math.log(self.finest_resolution / self.base_resolution) / (self.n_levels - 1)
            )
        return float(self.per_level_scale)

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level


def level_scales(cfg: HashGridConfig) -> list[float]:
    """``scale_l = 2^(l·log2 b)·N_min − 1`` for every level (tcnn's ``grid_scale``)."""
    log2_b = math.log2(cfg.growth)
    return [2.0 ** (lvl * log2_b) * cfg.base_resolution - 1.0 for lvl in range(cfg.n_levels)]


def level_layout(cfg: HashGridConfig) -> list[tuple[float, int, int, int, bool]]:
    """Per level ``(scale, resolution, offset, size, dense)``; ``Σ size`` is the params' rows."""
    out = []
    offset = 0
    cap = 1 << cfg.log2_hashmap_size
    for scale in level_scales(cfg):
        res = math.ceil(scale) + 1
        full = min(res**cfg.n_input_dims, (1 << 31) - 1)  # tcnn clamps at uint32 max / 2
        size = min(-(-full // 8) * 8, cap)
        out.append((scale, res, offset, size, res**cfg.n_input_dims <= size))
        offset += size
    return out


def n_params(cfg: HashGridConfig) -> int:
    """Rows of ``params``."""
    _, _, off, size, _ = level_layout(cfg)[-1]
    return off + size


# --------------------------------------------------------------------------- the torch path


def _corners(
    xt: torch.Tensor, scale: float, res: int, size: int, dense: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corner indices ``(2^d, N)`` int64 and fractions ``(d, N)`` of points ``xt (d, N)`` at one level.

    Corner ``k`` takes offset bit ``(k >> i) & 1`` along dim ``i`` (dim 0 is the lowest bit). The
    rows are built by doubling: after dim ``i`` the first ``2^(i+1)`` are filled. Corner-major
    rows keep every operation on contiguous runs of N values. Sums and XORs are taken in int64 and
    reduced modulo 2^32 once at the end, which equals tcnn's per-term uint32 arithmetic.
    """
    d, n = xt.shape
    pos = xt * scale + 0.5
    cell = torch.floor(pos)
    frac = pos - cell
    g = cell.to(torch.int64)  # (d, N)
    idx = torch.empty(1 << d, n, dtype=torch.int64, device=xt.device)
    stride = 1
    for i in range(d):
        m = 1 << i
        step = stride if dense else PRIMES[i]
        a0 = g[i] * step  # Σ c_i·stride_i (dense) or XOR_i c_i·π_i (hashed), mod 2^32 below
        if i == 0:
            idx[0] = a0
            torch.add(a0, step, out=idx[1])
        elif dense:
            torch.add(idx[:m], a0 + step, out=idx[m : 2 * m])
            idx[:m] += a0
        else:
            torch.bitwise_xor(idx[:m], a0 + step, out=idx[m : 2 * m])
            idx[:m] ^= a0
        if dense:
            stride *= res
    if size & (size - 1) == 0:  # a power of two (≤ 2^30) divides 2^32: one mask does both
        idx &= size - 1
    else:
        idx &= _MASK
        idx %= size
    return idx, frac


def _dlinear(frac: torch.Tensor, skip: int | None = None) -> torch.Tensor:
    """d-linear corner weights ``(2^d, N)`` from the fractions ``(d, N)``; with ``skip = i`` the
    factor of dim ``i`` is replaced by its derivative (−1 for the low corner, +1 for the high)."""
    d, n = frac.shape
    w = torch.empty(1 << d, n, dtype=frac.dtype, device=frac.device)
    for i in range(d):
        m = 1 << i
        f = frac[i]
        if i == 0:
            if skip == 0:
                w[0], w[1] = -1, 1
            else:
                torch.sub(1, f, out=w[0])
                w[1] = f
        elif i == skip:
            w[m : 2 * m] = w[:m]
            w[:m].neg_()
        else:
            torch.mul(w[:m], f, out=w[m : 2 * m])
            w[:m] *= 1 - f
    return w


# dtypes as wide as one table row of 4, 8 or 16 bytes (F·itemsize): such rows are gathered as
# single elements, several times faster on CPU than index_select over rows of F values
_ROW_DTYPES = {4: torch.int32, 8: torch.int64, 16: torch.complex128}


def _gather_rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table (T, F)`` rows at ``idx (K,)`` → ``(K, F)``, bit for bit ``index_select``."""
    wide = _ROW_DTYPES.get(table.shape[1] * table.element_size())
    if wide is None or table.device.type != "cpu" or not table.is_contiguous():
        return table.index_select(0, idx)
    rows = table.view(wide).view(-1).index_select(0, idx)
    return rows.view(table.dtype).view(-1, table.shape[1])


class _HashGridFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, params, layout, n_features):
        n, nf = x.shape[0], n_features
        out = x.new_empty(n, len(layout) * nf)
        table = params.detach()
        for lo in range(0, n, _CHUNK):  # bounded temporaries: (2^d, chunk, F) at a time
            xt = x.detach()[lo : lo + _CHUNK].t().contiguous()  # (d, chunk)
            m = xt.shape[1]
            for lvl, (scale, res, off, size, dense) in enumerate(layout):
                idx, frac = _corners(xt, scale, res, size, dense)
                w = _dlinear(frac).to(table.dtype)  # (2^d, chunk)
                feats = _gather_rows(table[off : off + size], idx.view(-1)).view(-1, m, nf)
                for f in range(nf):
                    out[lo : lo + m, lvl * nf + f] = (w * feats[..., f]).sum(0)
        ctx.save_for_backward(x, params)
        ctx.layout, ctx.n_features = layout, n_features
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, params = ctx.saved_tensors
        layout, nf = ctx.layout, ctx.n_features
        need_x, need_p = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_p = torch.zeros_like(params) if need_p else None
        grad_xt = x.new_zeros(x.shape[1], x.shape[0]) if need_x else None  # (d, N)
        for lo in range(0, x.shape[0], _CHUNK):
            xt = x[lo : lo + _CHUNK].t().contiguous()
            m = xt.shape[1]
            for lvl, (scale, res, off, size, dense) in enumerate(layout):
                g = grad_out[lo : lo + m, lvl * nf : (lvl + 1) * nf].t()
                g = g.to(params.dtype).contiguous()  # (F, chunk): contiguous per feature
                idx, frac = _corners(xt, scale, res, size, dense)
                flat = idx.view(-1)
                if grad_p is not None:
                    # scatter-add of w·g into the table rows; one weighted bincount per feature
                    # is several times faster on CPU than index_add_ over rows of F values
                    wp = _dlinear(frac).to(params.dtype)
                    for f in range(nf):
                        grad_p[off : off + size, f] += torch.bincount(
                            flat, weights=(wp * g[f]).view(-1), minlength=size
                        )
                if grad_xt is not None:
                    feats = _gather_rows(params[off : off + size], flat).view(-1, m, nf)
                    dots = feats[..., 0] * g[0]  # <f_k, g> per corner, (2^d, chunk)
                    for f in range(1, nf):
                        dots.addcmul_(feats[..., f], g[f])
                    dots = dots.to(x.dtype)
                    for i in range(x.shape[1]):  # Σ_k ∂w_k/∂frac_i · <f_k, g>, times the scale
                        grad_xt[i, lo : lo + m] += scale * (_dlinear(frac, skip=i) * dots).sum(0)
        grad_x = grad_xt.t().contiguous() if grad_xt is not None else None
        return grad_x, grad_p, None, None


@torch.no_grad()
def level_usage(x: torch.Tensor, cfg: HashGridConfig, *, chunk: int = 1 << 16) -> list[float]:
    """Per level, the share of its table entries that receive a non-zero interpolation weight
    from some point of ``x (N, d)`` (how much of each table a data set uses)."""
    used = [
        torch.zeros(size, dtype=torch.bool, device=x.device) for *_, size, _ in level_layout(cfg)
    ]
    for lo in range(0, x.shape[0], chunk):
        xt = x[lo : lo + chunk].t().contiguous()
        for lvl, (scale, res, _off, size, dense) in enumerate(level_layout(cfg)):
            idx, frac = _corners(xt, scale, res, size, dense)
            used[lvl][idx[_dlinear(frac) > 0]] = True
    return [float(u.double().mean()) for u in used]


def _tcnn_available(x: torch.Tensor) -> bool:
    if x.device.type != "cuda":
        return False
    try:
        import tinycudann  # noqa: F401
    except Exception:
        return False
    return True


def _require_triton(caller: str) -> None:
    """Raise :class:`InputError` naming ``caller`` when triton cannot be imported."""
    try:
        import triton  # noqa: F401
    except Exception:
        raise InputError(
            f"{caller}(backend='triton'): triton is not installed; `pip install triton` (it needs "
            "CUDA, or TRITON_INTERPRET=1 for CPU tensors) or use backend='torch'"
        ) from None


def check_inputs(x: torch.Tensor, params: torch.Tensor, cfg: HashGridConfig) -> None:
    """Raise :class:`InputError` unless ``x`` is ``(N, d)`` and ``params`` is ``(Σ T_l, F)``."""
    if x.ndim != 2 or x.shape[1] != cfg.n_input_dims:
        raise InputError(
            f"hash_grid: x has shape {tuple(x.shape)}; expected (N, {cfg.n_input_dims})"
        )
    rows = n_params(cfg)
    if params.shape != (rows, cfg.n_features_per_level):
        raise InputError(
            f"hash_grid: params has shape {tuple(params.shape)}; expected "
            f"({rows}, {cfg.n_features_per_level}) for this config"
        )


def hash_grid(
    x: torch.Tensor, params: torch.Tensor, cfg: HashGridConfig, *, backend: str = "torch"
) -> torch.Tensor:
    """Encode points ``x (N, d)`` in [0, 1] with the tables ``params (Σ T_l, F)`` → ``(N, L·F)``.

    Differentiable in ``params`` and in ``x`` (the d-linear weights' derivatives times the level
    scale; zero almost nowhere). The functional form takes ``backend="torch"`` or ``"triton"``
    (float32 inputs; see the module docstring); the tcnn backend holds its own parameters and
    lives in :class:`HashGrid`.
    """
    if backend not in ("torch", "triton"):
        raise InputError(
            f"hash_grid(backend={backend!r}): the functional form runs 'torch' or 'triton'"
        )
    if backend == "triton":
        _require_triton("hash_grid")
        from knnlab.bright.hashgrid_triton import hash_grid_triton

        return hash_grid_triton(x, params, cfg)
    check_inputs(x, params, cfg)
    layout = tuple(level_layout(cfg))
    return _HashGridFn.apply(x.contiguous(), params, layout, cfg.n_features_per_level)


class HashGrid(nn.Module):
    """``hash_grid`` with its tables as a parameter (``self.params``, ``(Σ T_l, F)``).

    ``HashGrid(3, n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16,
    per_level_scale=2.0)`` or with ``finest_resolution=N_max``. ``backend="auto"`` uses tinycudann
    on CUDA when it is installed, with this module's ``params`` (tcnn's layout) as its weights;
    ``backend="triton"`` runs :mod:`knnlab.bright.hashgrid_triton` on the same ``params``.
    """

    def __init__(
        self,
        n_input_dims: int = 3,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float = 2.0,
        finest_resolution: float | None = None,
        *,
        backend: str = "torch",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if backend not in _BACKENDS:
            raise InputError(f"HashGrid(backend={backend!r}): choose one of {_BACKENDS}")
        if backend == "triton":
            _require_triton("HashGrid")
        self.cfg = HashGridConfig(
            n_input_dims, n_levels, n_features_per_level, log2_hashmap_size,
            base_resolution, per_level_scale, finest_resolution,
        )  # fmt: skip
        self.backend = backend
        init = torch.rand(n_params(self.cfg), n_features_per_level, generator=generator)
        self.params = nn.Parameter(init * 2e-4 - 1e-4)  # U(−1e-4, 1e-4) as in tcnn
        self._tcnn: nn.Module | None = None

    @property
    def n_output_dims(self) -> int:
        return self.cfg.n_output_dims

    def _tcnn_module(self) -> nn.Module:  # pragma: no cover - needs CUDA + tinycudann
        import tinycudann as tcnn

        c = self.cfg
        enc = tcnn.Encoding(
            c.n_input_dims,
            {
                "otype": "HashGrid",
                "n_levels": c.n_levels,
                "n_features_per_level": c.n_features_per_level,
                "log2_hashmap_size": c.log2_hashmap_size,
                "base_resolution": c.base_resolution,
                "per_level_scale": c.growth,
            },
            dtype=torch.float32,
        ).to(self.params.device)
        return enc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, d)`` in [0, 1] → ``(N, L·F)``."""
        if self.backend == "triton":
            return hash_grid(x, self.params, self.cfg, backend="triton")
        if self.backend in ("auto", "tcnn") and _tcnn_available(x):  # pragma: no cover
            if self._tcnn is None:  # kept out of the state dict: its own weights are unused
                self.__dict__["_tcnn"] = self._tcnn_module()
            # run tcnn's kernels with this module's tables (same layout), so that gradients
            # reach self.params and both backends share one set of weights
            flat = self.params.reshape(-1).float()
            enc: Any = self._tcnn
            out = torch.func.functional_call(enc, {"params": flat}, (x.float(),))
            return out.to(x.dtype)
        if self.backend == "tcnn" and not _tcnn_available(x):
            raise InputError(
                "HashGrid(backend='tcnn'): tinycudann is not importable or the input is not on "
                "CUDA; use backend='auto' or 'torch'"
            )
        return hash_grid(x, self.params, self.cfg)

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"d={c.n_input_dims}, L={c.n_levels}, F={c.n_features_per_level}, "
            f"T=2^{c.log2_hashmap_size}, N_min={c.base_resolution}, b={c.growth:.4f}"
        )
