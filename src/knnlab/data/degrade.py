"""Degradations that benchmarks are defined with: Gaussian noise, heteroscedastic ("Poisson–Gaussian")
noise, MATLAB-style bicubic resizing, and the RGB → Y conversion used to score super-resolution.

Shapes: images ``(C, H, W)`` or ``(B, C, H, W)``, float, nominally in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from knnlab.errors import InputError

__all__ = [
    "add_gaussian_noise",
    "add_poisson_gaussian_noise",
    "cubic",
    "imresize",
    "imresize_weights",
    "rgb_to_y",
]


def _check_image(x: torch.Tensor, fn: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{fn}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise InputError(f"{fn}: image shape {tuple(x.shape)} is not (C, H, W) or (B, C, H, W)")
    if not x.is_floating_point():
        raise InputError(
            f"{fn}: image dtype {x.dtype} is not floating point; convert with .float() / 255"
        )


def add_gaussian_noise(
    x: torch.Tensor,
    sigma: float,
    *,
    generator: torch.Generator | None = None,
    clip: bool = False,
) -> torch.Tensor:
    """Additive white Gaussian noise: ``x + sigma / 255 * N(0, 1)``, ``sigma`` on the 0–255 scale.

    The noise is drawn from ``generator`` (on its device, then moved to ``x``'s), so the same seed
    gives the same noise on CPU and GPU. ``clip=True`` clamps the result to [0, 1] (most denoising
    benchmarks, DnCNN and N3Net included, do not clip).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError("add_gaussian_noise: x must be a floating-point tensor (any shape)")
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise InputError(
            f"add_gaussian_noise: sigma={sigma!r} must be a finite number >= 0 (0-255 scale)"
        )
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    out = x + (sigma / 255.0) * noise
    return out.clamp(0.0, 1.0) if clip else out


def add_poisson_gaussian_noise(
    x: torch.Tensor,
    a: float | torch.Tensor,
    b: float | torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """Heteroscedastic Gaussian noise with noise-level function ``σ²(x) = a·x + b`` (Foi et al., TIP 2008,
    Eq. 1-3; the raw-noise model of the N³Net real-noise experiments, visinf/n3net ``experiment_pg.py``):

        y = x + sqrt(max(a·x + b, 0)) · n,   n ~ N(0, 1),   then clipped to [0, 1] (``clip=True``).

    ``a`` and ``b`` are numbers, or tensors that broadcast against ``x`` (e.g. ``(B, 1, 1, 1)`` for one
    level per image). ``x``: any float tensor, nominally in [0, 1]. The noise is drawn from ``generator``
    (on its device, then moved to ``x``'s), so a seed gives the same noise on CPU and GPU.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InputError(
            "add_poisson_gaussian_noise: x must be a floating-point tensor (any shape)"
        )
    at = torch.as_tensor(a, dtype=x.dtype).to(x.device)
    bt = torch.as_tensor(b, dtype=x.dtype).to(x.device)
    for name, given, v in (("a", a, at), ("b", b, bt)):
        if not bool(torch.isfinite(v).all()) or bool((v < 0).any()):
            shown = given if not isinstance(given, torch.Tensor) else f"<tensor {tuple(v.shape)}>"
            raise InputError(
                f"add_poisson_gaussian_noise: {name}={shown} must be finite and >= 0 "
                "(variance a·x + b on the [0, 1] scale, e.g. a=0.01, b=1e-4)"
            )
    try:
        var = (at * x + bt).clamp_min(0.0)
    except RuntimeError as e:
        raise InputError(
            f"add_poisson_gaussian_noise: a {tuple(at.shape)} and b {tuple(bt.shape)} do not "
            f"broadcast against x {tuple(x.shape)}"
        ) from e
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    out = x + var.sqrt() * noise
    return out.clamp(0.0, 1.0) if clip else out


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Luma Y of ITU-R BT.601 for RGB in [0, 1], as super-resolution benchmarks compute it
    (MATLAB ``rgb2ycbcr``): ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255``, in [16/255, 235/255].

    ``(..., 3, H, W)`` → ``(..., 1, H, W)``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 3 or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"rgb_to_y: expected (..., 3, H, W) RGB, got {shape}")
    r, g, b = x.unbind(dim=-3)
    y = 16.0 / 255.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    return y.unsqueeze(-3)


def cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB ``imresize``'s ``cubic``)."""
    a = t.abs()
    a2, a3 = a * a, a * a * a
    return (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * (
        (a > 1) & (a <= 2)
    )


def imresize_weights(
    in_len: int, out_len: int, scale: float, *, antialias: bool = True
) -> torch.Tensor:
    """The ``(out_len, in_len)`` float64 matrix that resizes one axis as MATLAB's ``imresize`` does.

    Follows MATLAB's ``contributions``: output pixel ``x`` (1-based) maps to input coordinate
    ``u = x / scale + (1 - 1 / scale) / 2``; when down-scaling with antialiasing the kernel is
    stretched by ``1 / scale`` (and its height scaled by ``scale``); each row of weights is
    normalised to sum 1; indices outside the image are mirrored (symmetric padding), so their weights
    fold onto the mirrored input pixels.
    """
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width = kernel_width / scale

        def h(t: torch.Tensor) -> torch.Tensor:
            return scale * cubic(scale * t)
    else:
        h = cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - kernel_width / 2)
    p = math.ceil(kernel_width) + 2
    ind = left[:, None] + torch.arange(p, dtype=torch.float64)[None, :]  # (out, P), 1-based
    w = h(u[:, None] - ind)
    w = w / w.sum(dim=1, keepdim=True)
    # Symmetric padding: 1-based index i maps to aux[(i - 1) mod 2n], aux = [1..n, n..1].
    aux = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    idx = aux[torch.remainder(ind.long() - 1, 2 * in_len)]
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, idx, w)
    return mat


def imresize(
    x: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    *,
    size: Sequence[int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Bicubic resize matching MATLAB's ``imresize(x, scale)`` / ``imresize(x, [h w])``.

    ``x``: float ``(C, H, W)`` or ``(B, C, H, W)``. Give ``scale`` (a number, or one per axis; the
    output is ``ceil(scale * in)``) or ``size = (H_out, W_out)`` (then the scale of each axis is
    ``out / in``). Separable; the axis with the smaller scale is resized first, as MATLAB does. Cubic
    kernel a = -0.5, antialiasing when down-scaling, symmetric boundary handling. Computed in float64
    and returned in ``x``'s dtype; values are not clipped (MATLAB clips only integer images).
    """
    _check_image(x, "imresize")
    if (scale is None) == (size is None):
        raise InputError("imresize: give exactly one of scale (e.g. 0.5) and size (H_out, W_out)")
    in_h, in_w = x.shape[-2], x.shape[-1]
    if size is not None:
        if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
            raise InputError(
                f"imresize: size={size!r} must be two positive integers (H_out, W_out)"
            )
        out_h, out_w = int(size[0]), int(size[1])
        scales = (out_h / in_h, out_w / in_w)
    else:
        assert scale is not None
        sc = (
            (float(scale), float(scale))
            if isinstance(scale, (int, float))
            else tuple(map(float, scale))
        )
        if len(sc) != 2 or not all(math.isfinite(s) and s > 0 for s in sc):
            raise InputError(f"imresize: scale={scale!r} must be a positive number or two of them")
        scales = (sc[0], sc[1])
        out_h, out_w = math.ceil(scales[0] * in_h), math.ceil(scales[1] * in_w)
    if in_h < 1 or in_w < 1:
        raise InputError(f"imresize: image shape {tuple(x.shape)} is empty")
    y = x.to(torch.float64)
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        if axis == 0:
            m = imresize_weights(in_h, out_h, scales[0], antialias=antialias).to(y.device)
            y = torch.einsum("oh,...hw->...ow", m, y)
        else:
            m = imresize_weights(in_w, out_w, scales[1], antialias=antialias).to(y.device)
            y = torch.einsum("ow,...hw->...ho", m, y)
    return y.to(x.dtype)
