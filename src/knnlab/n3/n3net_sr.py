"""N³Net for single-image super-resolution (Plötz & Roth, NeurIPS 2018, Sec. 5.2 and the supplement).

The denoising :class:`~knnlab.n3.N3Net` with VDSR stages in place of DnCNN stages: three VDSR networks
of depth 7 (64 features, no BatchNorm) with two N³ blocks (k = 7) between them::

    x ─ VDSR₇(1 → 8) ─ N3Block(8 → 64) ─ VDSR₇(64 → 8) ─ N3Block(8 → 64) ─ VDSR₇(64 → 1) ─ y

Each stage is residual on its first ``min(in, out)`` channels, so the bicubic-upsampled input travels
in channel 0 and the network predicts the high-frequency residual, as VDSR does. One model serves
×2, ×3 and ×4 (it is trained on all three together). The residual outputs of every stage start at
zero (:func:`~knnlab.n3.vdsr.identity_init`), so a fresh model is bicubic upsampling. The authors did not release super-resolution
code; the N³ block settings are those of the released denoising model (patches 10, stride 5, 15×15
search window).

Images ``(B, 1, H, W)``: bicubic-upsampled Y (BT.601) in [0, 1], at least 76×76.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import cast

from knnlab.n3.dncnn import DnCNN
from knnlab.n3.n3net import N3Net, N3NetConfig
from knnlab.n3.vdsr import identity_init

__all__ = ["N3NetSR", "N3NetSRConfig"]


@dataclass
class N3NetSRConfig(N3NetConfig):
    """Configuration of :class:`N3NetSR`: :class:`~knnlab.n3.N3NetConfig` with VDSR stages."""

    stage_depth: int = 7  # convolutions per VDSR stage
    stage_batch_norm: bool = False  # VDSR has no BatchNorm


class N3NetSR(N3Net):
    """N³Net for super-resolution: ``(B, 1, H, W)`` bicubic-upsampled Y → super-resolved Y."""

    config_class = N3NetSRConfig

    def __init__(self, config: N3NetSRConfig | None = None, **overrides) -> None:
        super().__init__(config, **overrides)
        for stage in self.stages:  # start as bicubic upsampling (see identity_init)
            identity_init(cast(DnCNN, stage))

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, *, map_location="cpu") -> N3NetSR:
        """A folder written by :meth:`save_pretrained` (there are no published SR weights)."""
        # skip N3Net's lookup of the denoising checkpoints' names
        return super(N3Net, cls).from_pretrained(name_or_dir, map_location=map_location)
