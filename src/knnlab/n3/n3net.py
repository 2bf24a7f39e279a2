"""N³Net for Gaussian denoising (Plötz & Roth, "Neural Nearest Neighbors Networks", NeurIPS 2018, Sec. 5.2).

DnCNN stages for local processing interleaved with N³ blocks for non-local processing::

    x ─ DnCNN(1 → 8) ─ N3Block(8 → 64) ─ DnCNN(64 → 8) ─ N3Block(8 → 64) ─ DnCNN(64 → 1) ─ y

as released (visinf/n3net ``main.py`` defaults: 3 stages of 6 convolutions with 64 features, 8 channels
between stages, k = 7, patches 10 at stride 5, 15×15 search window, embedding and temperature CNNs of
3 layers with 64 features, temperature offset 0.1, BatchNorm on the distances). Each stage is residual on
its first ``min(in, out)`` channels (the first stage on the image channels only, ``min(in, out,
out_channels)``, so extra input channels such as noise-level maps are not carried), so the noisy image
travels in channel 0 and the network predicts the correction; there is no extra global skip. Images ``(B, 1, H, W)`` in [0, 1] in and out, noise added on
that scale (σ/255); nothing is clipped.

``N3Net.from_pretrained("n3net-official-sigma25")`` (50, 70) loads the authors' checkpoints (see
:mod:`knnlab.n3.pretrained`; non-commercial licence).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.hub import PretrainedMixin, load_state_dict_strict
from knnlab.n3.block import N3Block
from knnlab.n3.dncnn import DnCNN, DnCNNConfig
from knnlab.n3.patches import min_image_size
from knnlab.n3.pretrained import (
    convert_official_state_dict,
    load_official_state_dict,
    official_sigma,
)

__all__ = ["OFFICIAL_BLOCK_PREFIXES", "N3Net", "N3NetConfig"]

#: How the released ``nls.<i>.*`` names map onto :class:`~knnlab.n3.N3Block`'s.
OFFICIAL_BLOCK_PREFIXES = {
    "embedcnn.": "embedding.",
    "tempcnn.": "temperature.",
    "n3aggregation.aggregation.nnn.bn.": "aggregation.distance_norm.",
}


@dataclass
class N3NetConfig:
    """Configuration of :class:`N3Net`; the defaults are the released Gaussian-denoising model."""

    in_channels: int = 1  # image channels (the released models are gray)
    out_channels: int = 1
    intermediate_channels: int = 8  # output channels of the inner DnCNN stages (= N³ block input)
    num_stages: int = 3  # DnCNN stages; an N³ block follows every stage but the last
    stage_depth: int = 6  # convolutions per DnCNN stage
    features: int = 64  # hidden channels of the DnCNN stages
    stage_batch_norm: bool = True  # BatchNorm in the stages (DnCNN); False: plain VDSR stages
    k: int = 7  # neighbour volumes per N³ block
    patch_size: int = 10
    stride: int = 5
    window: int = 15  # search window, in patches
    embed_features: int = 64  # hidden channels of f_E and f_T
    embed_out: int = 8  # embedding channels of f_E
    embed_depth: int = 3  # convolutions of f_E and f_T
    relaxation: str = "reference"  # continuous kNN: "reference" (released), "paper" or "hard"
    distance_norm: bool = True  # BatchNorm1d(1) on the negated distances, as released
    temperature_offset: float = 0.1  # T = offset · exp(mean f_T over the patch), as released


class N3Net(PretrainedMixin, nn.Module):
    """N³Net: ``(B, in_channels, H, W)`` → ``(B, out_channels, H, W)``, images in [0, 1].

    Inputs smaller than :attr:`min_size` on either side raise :class:`~knnlab.errors.InputError`.
    """

    config_class = N3NetConfig

    def __init__(self, config: N3NetConfig | None = None, **overrides) -> None:
        super().__init__()
        config = config or self.config_class()
        if overrides:
            config = self.config_class(**{**config.__dict__, **overrides})
        if config.num_stages < 1:
            raise InputError(f"N3NetConfig.num_stages={config.num_stages}: needs at least 1")
        self.config = config
        c = config
        stages, blocks = [], []
        nin = c.in_channels
        for i in range(c.num_stages):
            last = i == c.num_stages - 1
            nout = c.out_channels if last else c.intermediate_channels
            stages.append(
                DnCNN(
                    DnCNNConfig(
                        in_channels=nin,
                        out_channels=nout,
                        features=c.features,
                        depth=c.stage_depth,
                        batch_norm=c.stage_batch_norm,
                        residual=True,
                        # the first stage carries only the image channels (not noise-level maps)
                        residual_channels=min(nin, nout, c.out_channels) if i == 0 else None,
                    )
                )
            )
            if not last:
                block = N3Block(
                    c.intermediate_channels,
                    k=c.k,
                    patch_size=c.patch_size,
                    stride=c.stride,
                    window=c.window,
                    embed_features=c.embed_features,
                    embed_out=c.embed_out,
                    embed_depth=c.embed_depth,
                    relaxation=c.relaxation,
                    distance_norm=c.distance_norm,
                    log_temperature_offset=math.log(c.temperature_offset),
                )
                blocks.append(block)
                nin = block.out_channels
        self.stages = nn.ModuleList(stages)
        self.n3blocks = nn.ModuleList(blocks)

    @property
    def min_size(self) -> int:
        """Smallest image side the N³ blocks accept (76 at the released settings)."""
        if not self.n3blocks:
            return 1
        c = self.config
        return min_image_size(c.patch_size, c.stride, c.window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise InputError(
                f"{type(self).__name__} expects (B, {c.in_channels}, H, W); got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise InputError(
                f"{type(self).__name__} needs images of at least {self.min_size}×{self.min_size} pixels "
                f"(patch_size={c.patch_size}, stride={c.stride}, window={c.window}); got "
                f"{x.shape[-2]}×{x.shape[-1]}; pad or upscale the image"
            )
        for stage, block in zip(self.stages[:-1], self.n3blocks):
            x = block(stage(x))
        return self.stages[-1](x)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, *, map_location="cpu") -> N3Net:
        """A folder written by :meth:`save_pretrained`, or ``"n3net-official-sigma{25,50,70}"``: the
        authors' published checkpoint (non-commercial licence), resolved and verified as described in
        :mod:`knnlab.n3.pretrained`. Returned in ``eval()`` mode."""
        sigma = official_sigma(str(name_or_dir))
        if sigma is None:
            return super().from_pretrained(name_or_dir, map_location=map_location)
        model = cls(N3NetConfig())
        state = convert_official_state_dict(
            load_official_state_dict(sigma), OFFICIAL_BLOCK_PREFIXES
        )
        load_state_dict_strict(model, state, source=f"n3net-official-sigma{sigma}")
        return model.to(map_location).eval()
