"""Denoising real (or synthetic Poisson–Gaussian) noise with a noise-level-aware model, blind or not.

``load_real_denoiser(name)`` resolves ``"n3net-real"`` (the shipped weights in
``knnlab/assets/n3net_real/``, trained by ``knnlab experiment real-noise``) or a folder written by
``save_pretrained`` / a training run (N³Net-real or DnCNN-real: 3 input channels). The resulting
:class:`RealDenoiser` takes ``(C, H, W)`` images in [0, 1]; each channel is denoised as a gray image
with its own noise-level function: estimated from that channel (:mod:`knnlab.n3.real.nlf`, blind), or
given. sRGB photographs are thus denoised per R, G, B channel, each with its own (a, b).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.n3.denoise import DEFAULT_OVERLAP, DEFAULT_TILE, denoise_tiled, load_model
from knnlab.n3.real.nlf import NoiseLevelFunction, estimate_nlf
from knnlab.n3.real.noise import noise_level_input

__all__ = [
    "A_RANGE",
    "B_RANGE",
    "N3NET_REAL_DIR",
    "RealDenoiser",
    "is_real_model",
    "load_real_denoiser",
]

log = logging.getLogger(__name__)

#: The shipped N³Net-real (``knnlab experiment real-noise`` writes it).
N3NET_REAL_DIR = Path(__file__).resolve().parents[2] / "assets" / "n3net_real"
#: The training range of the noise levels (knnlab.n3.real.noise); estimates are clipped to it.
A_RANGE = (1e-4, 1e-1)
B_RANGE = (10.0 ** (-4.0 - 2.3 - 1.3), 10.0 ** (-1.0 - 2.3 + 1.3))


@dataclass
class RealDenoiser:
    """A model with inputs ``[noisy, a, b]`` (``(B, 3, H, W)`` → ``(B, 1, H, W)``), applied per channel.

    ``nlf_scale`` is the estimator's ``scale`` (2 for sRGB photographs, 1 for white noise).
    """

    name: str
    model: nn.Module
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    tile: int | None = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    nlf_scale: int = 2
    min_size: int = 1

    def estimate(self, noisy: torch.Tensor) -> list[NoiseLevelFunction]:
        """Per-channel noise-level functions of ``(C, H, W)``, clipped to the training range."""
        return [
            estimate_nlf(noisy[c], scale=self.nlf_scale).clamped(A_RANGE, B_RANGE)
            for c in range(noisy.shape[0])
        ]

    @torch.no_grad()
    def __call__(
        self, noisy: torch.Tensor, nlf: Sequence[NoiseLevelFunction] | None = None
    ) -> torch.Tensor:
        """``(C, H, W)`` → ``(C, H, W)``; ``nlf``: one function per channel (None: estimate them)."""
        if noisy.ndim != 3:
            raise InputError(f"{self.name}: expected a (C, H, W) image, got {tuple(noisy.shape)}")
        c, h, w = noisy.shape
        if min(h, w) < self.min_size:
            raise InputError(
                f"image is {h}×{w}; {self.name} needs at least {self.min_size}×{self.min_size} "
                "pixels; pad or upscale it"
            )
        nlfs = list(nlf) if nlf is not None else self.estimate(noisy)
        if len(nlfs) != c:
            raise InputError(f"{self.name}: {len(nlfs)} noise-level functions for {c} channels")
        outs = []
        for ch, f in zip(noisy, nlfs):
            x = noise_level_input(ch[None, None].to(self.device, torch.float32), f.a, f.b)
            y = denoise_tiled(self.model, x, tile=self.tile, overlap=self.overlap)
            outs.append(y[0, 0])
        return torch.stack(outs).to(noisy.device, noisy.dtype)


def is_real_model(name: str | Path) -> bool:
    """``"n3net-real"``, or a model folder whose ``config.json`` says 3 input channels (image, a, b)."""
    import json

    if str(name) == "n3net-real":
        return True
    folder = Path(name)
    if (folder / "model" / "config.json").is_file():
        folder = folder / "model"
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("in_channels") == 3


def load_real_denoiser(
    name: str | Path = "n3net-real",
    *,
    device: torch.device | str = "cpu",
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    nlf_scale: int = 2,
) -> RealDenoiser:
    """``"n3net-real"`` (shipped) or a model folder with 3 input channels → :class:`RealDenoiser`."""
    key = str(name)
    if key == "n3net-real":
        if not (N3NET_REAL_DIR / "config.json").is_file():
            raise InputError(
                f"the shipped n3net-real weights are missing from {N3NET_REAL_DIR}; reproduce them "
                "with `knnlab experiment real-noise --ship`"
            )
        model = load_model(N3NET_REAL_DIR)
    else:
        model = load_model(key)
    in_ch = getattr(getattr(model, "config", None), "in_channels", None)
    if in_ch != 3:
        raise InputError(
            f"--model {key!r} takes {in_ch} input channels; a real-noise model takes 3 (image, a, b); "
            "train one with `knnlab experiment real-noise`"
        )
    model = model.to(device).eval()
    return RealDenoiser(
        key if key == "n3net-real" else (Path(key).name or key),
        model,
        device=torch.device(device),
        tile=tile,
        overlap=overlap,
        nlf_scale=nlf_scale,
        min_size=int(getattr(model, "min_size", 1)),
    )
