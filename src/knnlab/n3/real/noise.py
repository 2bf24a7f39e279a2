"""The real-noise training recipe of N³Net (Plötz & Roth, NeurIPS 2018, Sec. 5.3; visinf/n3net
``src_denoising/experiment_pg.py``): raw-like clean images, random noise levels, noise-level maps.

- Clean images are made raw-like: gray ``0.2989 R + 0.5870 G + 0.1140 B`` (PIL's ``convert('L')``
  weights, as released), then ``x = f_c · x^(f_e)`` with ``f_e ~ U(1.25, 10)`` (undoing a camera
  gamma) and ``f_c ~ U(0.25, 1)`` (brightness), one draw per crop.
- Noise levels per crop: ``log₁₀ a ~ U(−4, −1)``, ``log₁₀ b = log₁₀ a − 2.3 + U(−1.3, 1.3)``.
- Noisy ``y = clip(x + sqrt(a·x + b) · n, 0, 1)`` (:func:`knnlab.data.add_poisson_gaussian_noise`).
- The network input is ``[y, a·1, b·1]``: the image and two constant maps, ``(B, 3, H, W)``.

Every draw takes an explicit ``generator`` (``None``: torch's global RNG, which the training loop seeds
and restores on resume).
"""

from __future__ import annotations

import torch

from knnlab.data import add_poisson_gaussian_noise
from knnlab.errors import InputError

__all__ = [
    "GRAY_WEIGHTS",
    "LOG10_A_RANGE",
    "LOG10_B_OFFSET",
    "LOG10_B_SPREAD",
    "noise_level_input",
    "raw_like",
    "real_noise_batch",
    "sample_noise_levels",
    "to_gray",
]

#: PIL ``convert('L', (0.2989, 0.5870, 0.1140, 0))``, as the released real-noise recipe converts.
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
LOG10_A_RANGE = (-4.0, -1.0)
LOG10_B_OFFSET = -2.3
LOG10_B_SPREAD = 1.3
EXPONENT_RANGE = (1.25, 10.0)  # f_e
SCALE_RANGE = (0.25, 1.0)  # f_c


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None) -> torch.Tensor:
    """``(n,)`` float64 draws of U(lo, hi)."""
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


def sample_noise_levels(
    n: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)``, each ``(n,)`` float64: ``log₁₀ a ~ U(−4, −1)``, ``log₁₀ b = log₁₀ a − 2.3 + U(−1.3, 1.3)``
    (``experiment_pg.py: data_preprocessing``)."""
    if n < 1:
        raise InputError(f"sample_noise_levels: n={n} must be at least 1")
    la = _uniform(n, *LOG10_A_RANGE, generator)
    lb = la + LOG10_B_OFFSET + _uniform(n, -LOG10_B_SPREAD, LOG10_B_SPREAD, generator)
    return 10.0**la, 10.0**lb


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB → ``(B, 1, H, W)`` with :data:`GRAY_WEIGHTS`; 1-channel input is returned."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"to_gray: expected (B, 1 or 3, H, W), got {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def raw_like(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, 1 or 3, H, W)`` sRGB-like crops in [0, 1] → ``(B, 1, H, W)`` raw-like gray
    ``f_c · gray^(f_e)``, ``f_e ~ U(1.25, 10)``, ``f_c ~ U(0.25, 1)`` per crop (``PowerTransform(1.25, 10)``,
    ``ContinuousIntensityScale([0.25, 1])`` of the released recipe)."""
    g = to_gray(x).clamp(0.0, 1.0)
    b = g.shape[0]
    fe = _uniform(b, *EXPONENT_RANGE, generator).to(g.device, g.dtype).view(b, 1, 1, 1)
    fc = _uniform(b, *SCALE_RANGE, generator).to(g.device, g.dtype).view(b, 1, 1, 1)
    return fc * g.pow(fe)


def noise_level_input(
    noisy: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float
) -> torch.Tensor:
    """``[noisy, a·1, b·1]``: ``(B, 1, H, W)`` and per-image (or scalar) ``a``, ``b`` → ``(B, 3, H, W)``
    (``experiment_pg.py: add_input_channels``)."""
    if noisy.ndim != 4 or noisy.shape[1] != 1:
        raise InputError(f"noise_level_input: expected (B, 1, H, W), got {tuple(noisy.shape)}")
    bsz = noisy.shape[0]
    at = torch.as_tensor(a, dtype=noisy.dtype).to(noisy.device).reshape(-1, 1, 1, 1)
    bt = torch.as_tensor(b, dtype=noisy.dtype).to(noisy.device).reshape(-1, 1, 1, 1)
    if at.shape[0] not in (1, bsz) or bt.shape[0] not in (1, bsz):
        raise InputError(
            f"noise_level_input: a ({at.shape[0]}) and b ({bt.shape[0]}) need 1 or B={bsz} values"
        )
    ones = torch.ones_like(noisy)
    return torch.cat([noisy, ones * at, ones * bt], dim=1)


def real_noise_batch(
    crops: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch of the released recipe: ``(B, 1|3, H, W)`` crops → ``(inputs (B, 3, H, W),
    clean (B, 1, H, W))``, with raw-like clean images, random levels and clipped noise."""
    clean = raw_like(crops, generator=generator)
    a, b = sample_noise_levels(clean.shape[0], generator=generator)
    a4 = a.to(clean.device, clean.dtype).view(-1, 1, 1, 1)
    b4 = b.to(clean.device, clean.dtype).view(-1, 1, 1, 1)
    noisy = add_poisson_gaussian_noise(clean, a4, b4, generator=generator, clip=True)
    return noise_level_input(noisy, a4, b4), clean
