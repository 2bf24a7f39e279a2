"""Full-reference image quality: PSNR and SSIM, computed in float64.

Shapes: ``(B, C, H, W)`` → ``(B,)``; ``(C, H, W)`` → a 0-d tensor. Both inputs must have the same
shape and finite values. ``shave`` crops that many pixels from every border first (super-resolution
benchmarks shave the scale factor); ``y_channel`` scores the BT.601 luma of RGB inputs only (as
super-resolution papers do).
"""

from __future__ import annotations

import math

import torch

from knnlab.data.degrade import rgb_to_y
from knnlab.errors import InputError

__all__ = ["gaussian_window", "psnr", "ssim"]


def _prepare(
    x: torch.Tensor, y: torch.Tensor, data_range: float, shave: int, y_channel: bool, fn: str
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InputError(f"{fn}: x and y must be torch tensors")
    if x.shape != y.shape:
        raise InputError(
            f"{fn}: x has shape {tuple(x.shape)} but y has {tuple(y.shape)}; they must match"
        )
    if x.ndim not in (3, 4):
        raise InputError(f"{fn}: shape {tuple(x.shape)} is not (C, H, W) or (B, C, H, W)")
    if not (math.isfinite(data_range) and data_range > 0):
        raise InputError(
            f"{fn}: data_range={data_range!r} must be a positive number (1.0 for [0, 1] images)"
        )
    if int(shave) != shave or shave < 0:
        raise InputError(f"{fn}: shave={shave!r} must be an integer >= 0")
    squeeze = x.ndim == 3
    x64, y64 = x.to(torch.float64), y.to(torch.float64)
    if squeeze:
        x64, y64 = x64[None], y64[None]
    if not (torch.isfinite(x64).all() and torch.isfinite(y64).all()):
        raise InputError(f"{fn}: inputs hold NaN or Inf values")
    if y_channel:
        if x64.shape[1] != 3:
            raise InputError(
                f"{fn}: y_channel=True needs RGB inputs (C = 3), got C = {x64.shape[1]}"
            )
        x64 = rgb_to_y(x64 / data_range) * data_range
        y64 = rgb_to_y(y64 / data_range) * data_range
    if shave:
        h, w = x64.shape[-2:]
        if 2 * shave >= min(h, w):
            raise InputError(f"{fn}: shave={shave} leaves nothing of a {h}x{w} image")
        x64 = x64[..., shave:-shave, shave:-shave]
        y64 = y64[..., shave:-shave, shave:-shave]
    return x64, y64, squeeze


def psnr(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    shave: int = 0,
    y_channel: bool = False,
) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB, MSE over C, H, W.

    Identical images give ``inf``. Returns float64 ``(B,)`` (or 0-d for ``(C, H, W)`` input).
    """
    x64, y64, squeeze = _prepare(x, y, float(data_range), shave, y_channel, "psnr")
    mse = (x64 - y64).pow(2).flatten(1).mean(dim=1)
    out = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    return out[0] if squeeze else out


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian, float64 ``(size,)``."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    shave: int = 0,
    y_channel: bool = False,
) -> torch.Tensor:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13), Gaussian 11×11 window
    with σ = 1.5, K1 = 0.01, K2 = 0.03, population (biased) variances; the SSIM map is averaged over
    the valid region (where the window fits) and over channels.

    Returns float64 ``(B,)`` (or 0-d for ``(C, H, W)`` input). Matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=...)``.
    """
    x64, y64, squeeze = _prepare(x, y, float(data_range), shave, y_channel, "ssim")
    h, w = x64.shape[-2:]
    size = 11
    if h < size or w < size:
        raise InputError(f"ssim: images must be at least {size}x{size} (after shave), got {h}x{w}")
    g = gaussian_window(size, 1.5).to(x64.device)

    def filt(t: torch.Tensor) -> torch.Tensor:
        # Valid separable Gaussian filtering: windows along H, then along W, each dotted with g.
        # (float64 conv2d is slow on CPU; this is exact and several times faster.)
        rows = t.unfold(-2, size, 1) @ g  # (B, C, H - 10, W)
        return rows.unfold(-1, size, 1) @ g  # (B, C, H - 10, W - 10)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y = filt(x64), filt(y64)
    sxx = filt(x64 * x64) - mu_x**2
    syy = filt(y64 * y64) - mu_y**2
    sxy = filt(x64 * y64) - mu_x * mu_y
    smap = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    out = smap.flatten(1).mean(dim=1)
    return out[0] if squeeze else out
