"""Noise schedules for latent diffusion over key codes, as ``betas`` for diffusers' schedulers.

- ``"linear"``: DDPM's linear betas (Ho et al. 2020), 1e-4 → 0.02 over 1000 steps.
- ``"cosine"``: Nichol & Dhariwal (2021) squared-cosine ᾱ (diffusers' ``squaredcos_cap_v2``).
- ``"cosine_variant"``: the schedule of the BRIGHT release (via imagen-pytorch), the cosine
  schedule of Chen (2023), "On the importance of noise scheduling for diffusion models", eq. in
  sec. 2: with ``v(t) = cos((t (e − s) + s) π/2)^(2τ)``, the signal level is
  ``γ(t) = (v(1) − v(t)) / (v(1) − v(0))`` clipped to ``[1e-9, 0.9999]``, with s = 0.2, e = 1, τ = 1.5
  (here ``v(0)`` and ``v(1)`` are ``v`` at the ends t = 0 and t = 1 of the *rescaled* interval, i.e.
  ``cos(s π/2)^(2τ)`` and ``cos(e π/2)^(2τ)``). γ is ᾱ, the cumulative product of (1 − β).

A continuous ᾱ(t) becomes ``T`` betas as diffusers' ``betas_for_alpha_bar`` makes them:
``β_i = min(1 − ᾱ((i+1)/T) / ᾱ(i/T), max_beta)``, i = 0 … T−1, ``max_beta = 0.999``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from knnlab.errors import InputError

__all__ = ["SCHEDULES", "betas_from_alpha_bar", "cosine_variant_alpha_bar", "make_betas"]

SCHEDULES = ("linear", "cosine", "cosine_variant")


def cosine_variant_alpha_bar(
    t: np.ndarray | float,
    start: float = 0.2,
    end: float = 1.0,
    tau: float = 1.5,
    clip_min: float = 1e-9,
    clip_max: float = 0.9999,
) -> np.ndarray:
    """γ(t) of the release's cosine-variant schedule for ``t`` in [0, 1] (float64)."""
    t = np.asarray(t, dtype=np.float64)
    v_start = math.cos(start * math.pi / 2) ** (2 * tau)
    v_end = math.cos(end * math.pi / 2) ** (2 * tau)
    v = np.cos((t * (end - start) + start) * math.pi / 2) ** (2 * tau)
    return np.clip((v_end - v) / (v_end - v_start), clip_min, clip_max)


def betas_from_alpha_bar(
    alpha_bar: Callable[[np.ndarray], np.ndarray], steps: int = 1000, max_beta: float = 0.999
) -> np.ndarray:
    """``(steps,)`` float64 betas whose cumulative product follows ``alpha_bar`` on [0, 1]."""
    t = np.arange(steps + 1, dtype=np.float64) / steps
    a = alpha_bar(t)
    return np.minimum(1.0 - a[1:] / a[:-1], max_beta)


def _cosine_alpha_bar(t: np.ndarray) -> np.ndarray:
    return np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def make_betas(name: str, steps: int = 1000) -> np.ndarray:
    """The ``(steps,)`` betas of schedule ``name`` (one of :data:`SCHEDULES`)."""
    if steps < 2:
        raise InputError(f"steps={steps}: a schedule needs at least 2 steps")
    if name == "linear":
        return np.linspace(1e-4, 0.02, steps, dtype=np.float64) * (1000 / steps)
    if name == "cosine":
        return betas_from_alpha_bar(_cosine_alpha_bar, steps)
    if name == "cosine_variant":
        return betas_from_alpha_bar(cosine_variant_alpha_bar, steps)
    raise InputError(f"schedule={name!r}: choose from {', '.join(SCHEDULES)}")
