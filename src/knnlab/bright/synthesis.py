"""StyleGAN2-style synthesis from a feature grid (no constant input), as BRIGHT's decoder.

Karras et al. 2020 (StyleGAN2), Fig. 7 "skip" generator: at the input resolution one modulated 3×3
conv (and an extra one); at every following resolution two modulated 3×3 convs, the first
upsampling ×2, and an extra conv; noise inputs; a toRGB (modulated 1×1, no demodulation) per
resolution whose outputs are upsampled and summed. All layers are modulated by one style vector.
Output ``(B, C_img, H, W)`` in roughly [−1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from knnlab.bright.layers import ModulatedConv2d

__all__ = ["Synthesis"]


class Synthesis(nn.Module):
    """``feat (B, c_in, r, r)``, ``style (B, style_dim)`` → ``(B, c_img, R, R)``.

    ``channels[i]`` is the width at resolution ``r·2^i``; ``R = r·2^(len(channels) − 1)``.
    """

    def __init__(
        self, c_in: int, c_img: int, style_dim: int, channels: tuple[int, ...],
        extra_conv: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        c = c_in
        for i, ch in enumerate(channels):
            layers = [
                ModulatedConv2d(c, ch, style_dim, up=i > 0),
                ModulatedConv2d(ch, ch, style_dim),
            ]
            if extra_conv:
                layers.append(ModulatedConv2d(ch, ch, style_dim))
            self.blocks.append(nn.ModuleList(layers))
            self.to_rgb.append(
                ModulatedConv2d(ch, c_img, style_dim, kernel=1, demodulate=False,
                                activation=False, noise=False)
            )  # fmt: skip
            c = ch

    def forward(
        self, feat: torch.Tensor, style: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        x, img = feat, None
        for block, rgb in zip(self.blocks, self.to_rgb):
            for layer in block:  # type: ignore[attr-defined]
                x = layer(x, style, generator=generator)
            y = rgb(x, style)
            img = y if img is None else F.interpolate(img, scale_factor=2, mode="bilinear") + y
        assert img is not None
        return img

    @staticmethod
    def channels_for(res_in: int, res_out: int, base: int, cap: int) -> tuple[int, ...]:
        """StyleGAN2's ``min(base // res, cap)`` widths for ``res_in … res_out``."""
        n = int(math.log2(res_out // res_in)) + 1
        return tuple(min(base // (res_in * 2**i), cap) for i in range(n))
