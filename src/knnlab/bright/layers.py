"""StyleGAN2 building blocks used by BRIGHT: second-moment normalisation, modulated linear and
modulated convolution layers (Karras et al., "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020, Sec. 2.2, Eq. 1-3: w' = s·w, w'' = w' / sqrt(Σ w'² + ε)).

Pure functions plus thin modules holding their weights and affine style maps. Every weight uses
StyleGAN's equalized learning rate (Karras et al. 2018, Sec. 4.1): it is stored as N(0, 1) (divided
by ``lr_multiplier``) and scaled by ``lr_multiplier / sqrt(fan_in)`` when used, so that Adam's steps
are the same fraction of every layer's weights; the release's global-path MLPs run at
``lr_multiplier = 0.01``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MLP",
    "EqualizedLinear",
    "ModulatedConv2d",
    "ModulatedLinear",
    "modulated_conv2d",
    "modulated_linear",
    "normalize_2nd_moment",
]


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """``x / sqrt(mean(x², dim) + eps)`` (StyleGAN2's pixel norm of latents)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_linear(
    x: torch.Tensor, weight: torch.Tensor, style: torch.Tensor, *, demodulate: bool = True
) -> torch.Tensor:
    """Per-sample modulated linear map: ``x (B, N, C_in)``, ``weight (C_out, C_in)``,
    ``style (B, C_in)`` → ``(B, N, C_out)``. Eq. 1 (modulation) and Eq. 3 (demodulation)."""
    w = weight.unsqueeze(0) * style.unsqueeze(1)  # (B, C_out, C_in)
    if demodulate:
        w = w * (w.square().sum(dim=2, keepdim=True) + 1e-8).rsqrt()
    return torch.bmm(x, w.transpose(1, 2))


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    style: torch.Tensor,
    *,
    demodulate: bool = True,
    up: bool = False,
) -> torch.Tensor:
    """``x (B, C_in, H, W)``, ``weight (C_out, C_in, k, k)``, ``style (B, C_in)`` → ``(B, C_out,
    H', W')`` with ``H' = 2H`` when ``up`` (bilinear ×2 before the conv), else ``H``; "same"
    padding.

    Computed as StyleGAN2's non-fused path, which equals modulating the weights: the input is
    scaled by the style, convolved with the shared weight, and the output scaled by the
    demodulation coefficients ``1/sqrt(Σ_{i,k} (s_i·w_oik)² + ε)`` (one batched conv instead of a
    grouped one; faster on CPU).
    """
    k = weight.shape[-1]
    if up:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    out = F.conv2d(x * style[:, :, None, None], weight, padding=k // 2)
    if demodulate:
        # Σ_i s_i² Σ_k w_oik²: (B, C_in) @ (C_in, C_out)
        d = (style.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
        out = out * d[:, :, None, None]
    return out


class ModulatedLinear(nn.Module):
    """``x (B, N, C_in)``, ``s (B, style_dim)`` → ``(B, N, C_out)``; style → per-input-channel
    scales by an equalized affine layer with bias 1, as StyleGAN2's ``affine``."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, *, activation: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in))  # demodulated: no gain needed
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.affine = EqualizedLinear(style_dim, c_in, bias_init=1.0)
        self.activation = activation

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = modulated_linear(x, self.weight, self.affine(s)) + self.bias
        return F.leaky_relu(out, 0.2) if self.activation else out


class ModulatedConv2d(nn.Module):
    """StyleGAN2 synthesis layer: modulated 3×3 conv (optionally ×2 up), per-pixel noise with a
    learned strength, bias and leaky ReLU. ``x (B, C_in, H, W)``, ``s (B, style_dim)``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        style_dim: int,
        *,
        kernel: int = 3,
        up: bool = False,
        demodulate: bool = True,
        activation: bool = True,
        noise: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.weight_gain = 1.0 / math.sqrt(c_in * kernel**2)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.affine = EqualizedLinear(style_dim, c_in, bias_init=1.0)
        self.noise_strength = nn.Parameter(torch.zeros(())) if noise else None
        self.up, self.demodulate, self.activation = up, demodulate, activation

    def forward(
        self, x: torch.Tensor, s: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        out = modulated_conv2d(
            x, self.weight * self.weight_gain, self.affine(s), demodulate=self.demodulate,
            up=self.up,
        )  # fmt: skip
        if self.noise_strength is not None:
            b, _, h, w = out.shape
            if self.training or generator is not None:
                n = torch.randn(b, 1, h, w, device=out.device, dtype=out.dtype, generator=generator)
                out = out + self.noise_strength * n
        out = out + self.bias.view(1, -1, 1, 1)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activation else out


class EqualizedLinear(nn.Module):
    """StyleGAN's fully connected layer: ``(…, C_in)`` → ``(…, C_out)`` with the weight stored as
    ``N(0, 1) / lr_multiplier`` and used times ``lr_multiplier / sqrt(C_in)``, the bias stored as
    ``bias_init / lr_multiplier`` and used times ``lr_multiplier``; optional leaky ReLU (0.2) × √2."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((c_out,), bias_init / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(c_in)
        self.lr_multiplier, self.activation = lr_multiplier, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_multiplier)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activation else out

    def extra_repr(self) -> str:
        return (
            f"{self.weight.shape[1]} → {self.weight.shape[0]}, lr_multiplier={self.lr_multiplier}, "
            f"activation={self.activation}"
        )


class MLP(nn.Module):
    """StyleGAN2's mapping network as the release uses it: ``(…, C_in)`` → ``(…, C_out)``, the
    input normalised to unit second moment, then ``depth`` equalized layers, each with leaky ReLU."""

    def __init__(
        self, c_in: int, hidden: int, c_out: int, depth: int = 2, lr_multiplier: float = 1.0
    ) -> None:
        super().__init__()
        dims = [c_in] + [hidden] * (depth - 1) + [c_out]
        self.net = nn.Sequential(
            *[
                EqualizedLinear(dims[i], dims[i + 1], lr_multiplier=lr_multiplier, activation=True)
                for i in range(depth)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(normalize_2nd_moment(x, dim=-1))
