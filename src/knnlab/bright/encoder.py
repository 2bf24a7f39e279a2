"""Latent-diffusion-style convolutional encoder and decoder (Rombach et al., "High-Resolution Image
Synthesis with Latent Diffusion Models", CVPR 2022, the VQGAN/LDM autoencoder): ResNet blocks with
GroupNorm(32) and leaky ReLU (as the BRICS release), stride-2 convolutions between levels, one
self-attention block at the lowest resolution.

``Encoder``: ``(B, C_img, H, W)`` → ``(B, C_out, H/f, W/f)`` with ``f = 2^(len(ch_mult) − 1)``;
``ConvDecoder``: the mirror image, used by the VQ / RQ / KL baselines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AttnBlock", "ConvDecoder", "Encoder", "ResnetBlock"]


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, ch), ch, eps=1e-6)


class ResnetBlock(nn.Module):
    """``norm → lrelu → conv3 → norm → lrelu → conv3`` plus a (1×1 when widths differ) skip."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        h = self.conv2(F.leaky_relu(self.norm2(h), 0.2))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the pixels of ``(B, C, H, W)``, residual."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)  # each (B, C, HW)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )  # (B, HW, C)
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class Encoder(nn.Module):
    """``(B, C_img, H, W)`` → ``(B, c_out, H/f, W/f)``; base ``ch`` channels times ``ch_mult``
    per level, ``num_res_blocks`` blocks a level, attention at the lowest resolution."""

    def __init__(
        self, c_img: int, c_out: int, ch: int = 32, ch_mult: tuple[int, ...] = (1, 2, 4),
        num_res_blocks: int = 2, attention: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv_in = nn.Conv2d(c_img, ch, 3, padding=1)
        blocks: list[nn.Module] = []
        c = ch
        for i, m in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(c, ch * m))
                c = ch * m
            if i < len(ch_mult) - 1:
                blocks.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.down = nn.Sequential(*blocks)
        mid: list[nn.Module] = [ResnetBlock(c, c)]
        if attention:
            mid += [AttnBlock(c), ResnetBlock(c, c)]
        self.mid = nn.Sequential(*mid)
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(x)))
        return self.conv_out(F.leaky_relu(self.norm_out(h), 0.2))


class ConvDecoder(nn.Module):
    """The mirror of :class:`Encoder`: ``(B, c_in, h, w)`` → ``(B, C_img, h·f, w·f)`` (no final
    activation; the autoencoders map it to [0, 1])."""

    def __init__(
        self, c_in: int, c_img: int, ch: int = 32, ch_mult: tuple[int, ...] = (1, 2, 4),
        num_res_blocks: int = 2, attention: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        c = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(c_in, c, 3, padding=1)
        mid: list[nn.Module] = [ResnetBlock(c, c)]
        if attention:
            mid += [AttnBlock(c), ResnetBlock(c, c)]
        self.mid = nn.Sequential(*mid)
        blocks: list[nn.Module] = []
        for i, m in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(c, ch * m))
                c = ch * m
            if i > 0:
                blocks += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(c, c, 3, padding=1),
                ]
        self.up = nn.Sequential(*blocks)
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, c_img, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(z)))
        return self.conv_out(F.leaky_relu(self.norm_out(h), 0.2))
