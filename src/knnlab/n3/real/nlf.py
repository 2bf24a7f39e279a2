"""A classical noise-level-function estimator: ``σ²(x) = a·x + b`` from one noisy image.

After Foi, Trimeche, Katkovnik & Egiazarian, "Practical Poissonian-Gaussian noise modeling and fitting
for single-image raw-data" (TIP 2008): local estimates of the noise variance against the local mean over
smooth regions, then a fit of the line ``a·x + b``. Simplified here, without the paper's
maximum-likelihood clipping model:

1. The image is cut into 2×2 cells. Each cell gives a local mean and the detail coefficient
   ``d = (y₀₀ − y₀₁ − y₁₀ + y₁₁) / 2``, which removes any plane (constant or linear gradient) and keeps
   the variance of white noise (``Var d = σ²``).
2. Cells are grouped into non-overlapping blocks of ``block × block`` pixels. Per block: the mean
   intensity and ``s² = mean(d²)`` over its ``block²/4`` cells (``s² ~ σ² · χ²_n / n`` on a flat block).
3. Blocks are binned by mean intensity (equal-count bins). In each bin the ``quantile`` of ``s²``
   divided by the same quantile of ``χ²_n / n`` estimates σ²: texture and edges only raise ``s²``, so a
   low quantile picks the flat blocks (Foi et al. select smooth regions for the same reason).
   Blocks without any detail at all (saturated, or flattened by JPEG) are left out first.
4. Bins whose intensity lies within 2σ of 0 or 1 are dropped (there the noise was clipped), and
   ``(a, b)`` is the non-negative weighted least-squares fit of the remaining ``(mean, σ²)`` points
   (weights ``n / σ⁴``, the inverse variance of each estimate).

``scale`` > 1 first averages ``scale × scale`` pixels (and multiplies the variances by ``scale²``). On
white noise every scale gives the same answer. Camera pipelines (demosaicing, denoising, JPEG) make
the noise of sRGB photographs spatially correlated and remove most of it from the finest 2×2 detail:
on PolyU and CC15 crops (``*_real − *_mean``) the scale-1 detail holds 0.45–2.5 (0–255) where the
pixel noise has a standard deviation of 2.2–5.2, while at scale 2 the two agree within 10%. Blind
denoising of photographs therefore uses ``scale=2`` (:data:`PHOTO_SCALE`).

Why classical: it needs no training, works on any image size, and is exact in expectation on flat
regions; its error is stated in the tests (``tests/n3/real/test_nlf.py``). sRGB photographs are not raw:
:func:`estimate_nlf_channels` estimates each colour channel on its own, as a gray image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.stats import chi2

from knnlab.errors import InputError

__all__ = ["PHOTO_SCALE", "NoiseLevelFunction", "estimate_nlf", "estimate_nlf_channels"]

#: ``scale`` for sRGB photographs (correlated noise, see the module docstring).
PHOTO_SCALE = 2


@dataclass
class NoiseLevelFunction:
    """``σ²(x) = a·x + b`` on the [0, 1] scale, with the binned points it was fitted to."""

    a: float
    b: float
    points: list[tuple[float, float, int]] = field(default_factory=list)  # (mean, σ², blocks)

    def variance(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.a * np.asarray(x, dtype=np.float64) + self.b

    def sigma(self, x: float | np.ndarray) -> float | np.ndarray:
        """Noise standard deviation at intensity ``x`` (0–1 scale)."""
        return np.sqrt(np.maximum(self.variance(x), 0.0))

    def clamped(
        self, a_range: tuple[float, float], b_range: tuple[float, float]
    ) -> NoiseLevelFunction:
        """The same function with ``a`` and ``b`` clipped to ranges (e.g. a model's training range)."""
        a = float(np.clip(self.a, *a_range))
        b = float(np.clip(self.b, *b_range))
        return NoiseLevelFunction(a, b, list(self.points))


def _as_gray(image: torch.Tensor | np.ndarray) -> np.ndarray:
    x = image.detach().cpu().double().numpy() if isinstance(image, torch.Tensor) else image
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise InputError(
            f"estimate_nlf: expected one gray image (H, W) or (1, H, W), got shape {x.shape}; "
            "use estimate_nlf_channels for colour"
        )
    if not np.isfinite(x).all():
        raise InputError("estimate_nlf: the image holds NaN or infinite values")
    return x


def estimate_nlf(
    image: torch.Tensor | np.ndarray,
    *,
    block: int = 8,
    bins: int = 12,
    quantile: float = 0.25,
    min_blocks: int = 20,
    scale: int = 1,
) -> NoiseLevelFunction:
    """Fit ``σ²(x) = a·x + b`` to one gray image in [0, 1] (see the module docstring for the method).

    Args:
        image: ``(H, W)`` or ``(1, H, W)``.
        block: block side in pixels (even, at least 4).
        bins: intensity bins (equal numbers of blocks).
        quantile: quantile of the block variances per bin (lower = more robust to texture).
        min_blocks: fewer usable blocks than this is an error (the image is too small).
        scale: average ``scale × scale`` pixels first (2 for sRGB photographs, see above).
    """
    if block < 4 or block % 2:
        raise InputError(f"estimate_nlf: block={block} must be even and at least 4")
    if not 0.0 < quantile < 1.0:
        raise InputError(f"estimate_nlf: quantile={quantile} must be in (0, 1)")
    if scale < 1:
        raise InputError(f"estimate_nlf: scale={scale} must be at least 1")
    x = _as_gray(image)
    if scale > 1:
        hs, ws = x.shape[0] // scale, x.shape[1] // scale
        x = x[: hs * scale, : ws * scale].reshape(hs, scale, ws, scale).mean(axis=(1, 3))
    h, w = (x.shape[0] // block) * block, (x.shape[1] // block) * block
    nb = (h // block) * (w // block)
    if nb < max(min_blocks, bins * 3):
        raise InputError(
            f"estimate_nlf: image {x.shape[0] * scale}×{x.shape[1] * scale} gives {nb} blocks of {block}×{block}; "
            f"need at least {max(min_blocks, bins * 3)} (a larger image or a smaller block)"
        )
    x = x[:h, :w]
    c00, c01, c10, c11 = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    d = (c00 - c01 - c10 + c11) / 2.0  # (h/2, w/2) detail, Var = σ² on white noise
    m = (c00 + c01 + c10 + c11) / 4.0
    cb = block // 2  # cells per block side
    n = cb * cb

    def blocks(v: np.ndarray) -> np.ndarray:  # (h/2, w/2) -> (blocks, n)
        return v.reshape(h // block, cb, w // block, cb).transpose(0, 2, 1, 3).reshape(-1, n)

    s2 = (blocks(d) ** 2).mean(1) * scale**2  # per-pixel variance of white noise
    mu = blocks(m).mean(1)
    live = s2 > 1e-12  # blocks without any detail (saturated, or flattened by JPEG) carry no noise
    if live.sum() >= max(min_blocks, bins * 3):
        s2, mu = s2[live], mu[live]
    order = np.argsort(mu, kind="stable")
    groups = np.array_split(order, bins)
    correction = chi2.ppf(quantile, n) / n
    pts: list[tuple[float, float, int]] = []
    for g in groups:
        if len(g) < 3:
            continue
        var = float(np.quantile(s2[g], quantile) / correction)
        pts.append((float(mu[g].mean()), var, len(g)))
    kept = [p for p in pts if 2.0 * np.sqrt(p[1]) < p[0] < 1.0 - 2.0 * np.sqrt(p[1])]
    if len(kept) < 2:
        kept = pts  # a nearly clipped image: fit what there is
    mx = np.array([p[0] for p in kept])
    vy = np.array([p[1] for p in kept])
    cnt = np.array([p[2] for p in kept], dtype=np.float64)
    # weighted least squares, weights n / σ⁴ (Var of a variance estimate ∝ σ⁴ / n), a, b >= 0
    sw = np.sqrt(cnt) / np.maximum(vy, 1e-12)
    design = np.stack([mx, np.ones_like(mx)], 1) * sw[:, None]
    (a, b), _ = nnls(design, vy * sw)
    return NoiseLevelFunction(float(a), float(b), pts)


def estimate_nlf_channels(image: torch.Tensor, **kwargs) -> list[NoiseLevelFunction]:
    """One :func:`estimate_nlf` per channel of a ``(C, H, W)`` image (sRGB photos: per R, G, B)."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"estimate_nlf_channels: expected a (C, H, W) tensor, got {shape}")
    return [estimate_nlf(image[c], **kwargs) for c in range(image.shape[0])]
