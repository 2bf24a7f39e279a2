"""DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", TIP 2017), as used stand-alone and as the local
stage of N³Net (Plötz & Roth, NeurIPS 2018).

Layout (``depth`` convolutions in all): ``head`` = conv(in → features, bias) + ReLU; ``body`` =
``depth − 2`` × [conv(features → features, no bias), BatchNorm, ReLU]; ``tail`` = conv(features → out,
bias). With ``residual=True`` the first ``min(in, out)`` (or ``residual_channels``) input channels are
added to the first output channels (the released N³Net code does exactly this, so a gray 1 → 8 stage carries the noisy image in its
channel 0). For a 1 → 1 denoiser this is residual learning: the convolutions predict −noise.

Images are ``(B, C, H, W)`` in [0, 1]; nothing is rescaled inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.hub import PretrainedMixin

__all__ = ["DnCNN", "DnCNNConfig", "dncnn_batchnorm_init"]


@dataclass
class DnCNNConfig:
    """Configuration of :class:`DnCNN`. The defaults are the 17-layer gray DnCNN-S of the paper."""

    in_channels: int = 1  # image (or feature) channels in
    out_channels: int = 1  # channels out
    features: int = 64  # hidden channels
    depth: int = 17  # number of convolutions, >= 2
    kernel_size: int = 3  # odd; "same" zero padding
    batch_norm: bool = True  # BatchNorm after every hidden convolution
    residual: bool = True  # add the first min(in, out) input channels to the output
    # how many leading channels the residual carries (None: min(in, out)); 1 for inputs with extra
    # noise-level maps, as the released real-noise N³Net does (``nplanes_residual``)
    residual_channels: int | None = None


def dncnn_batchnorm_init(bn: nn.BatchNorm2d, kernel_size: int = 3, b_min: float = 0.025) -> None:
    """DnCNN's BatchNorm initialisation (|N(0, 2/(k²·C))| scales, at least ``b_min``; zero shifts;
    running-statistics momentum 0.001), as in the released N³Net and DnCNN training code."""
    n = kernel_size**2 * bn.num_features
    with torch.no_grad():
        w = torch.randn_like(bn.weight) * math.sqrt(2.0 / n)
        bn.weight.copy_(w.abs().clamp_min(b_min))
        bn.bias.zero_()
    bn.momentum = 0.001


class DnCNN(PretrainedMixin, nn.Module):
    """A plain CNN of ``depth`` 3×3 convolutions with BatchNorm and ReLU and a residual connection.

    ``forward(x)``: ``(B, in_channels, H, W)`` → ``(B, out_channels, H, W)``, same size (zero padding).
    """

    config_class = DnCNNConfig

    def __init__(self, config: DnCNNConfig | None = None, **overrides) -> None:
        super().__init__()
        config = config or DnCNNConfig()
        if overrides:
            config = DnCNNConfig(**{**config.__dict__, **overrides})
        if config.depth < 2:
            raise InputError(f"DnCNN depth={config.depth}: needs at least 2 convolutions")
        rc = config.residual_channels
        if rc is not None and not 1 <= rc <= min(config.in_channels, config.out_channels):
            raise InputError(
                f"DnCNN residual_channels={rc}: must be in 1..min(in_channels, out_channels)"
            )
        if config.kernel_size % 2 != 1:
            raise InputError(f"DnCNN kernel_size={config.kernel_size}: must be odd")
        self.config = config
        c, f, ks = config, config.features, config.kernel_size
        pad = ks // 2
        self.head = nn.Conv2d(c.in_channels, f, ks, padding=pad, bias=True)
        layers: list[nn.Module] = []
        for _ in range(c.depth - 2):
            layers.append(nn.Conv2d(f, f, ks, padding=pad, bias=not c.batch_norm))
            if c.batch_norm:
                layers.append(nn.BatchNorm2d(f))
            layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(f, c.out_channels, ks, padding=pad, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal convolutions (fan-out) and DnCNN's BatchNorm init, as released."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                dncnn_batchnorm_init(m, self.config.kernel_size)

    @property
    def receptive_radius(self) -> int:
        """How many pixels away an output pixel can see (for tiling with exact overlap)."""
        return self.config.depth * (self.config.kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"DnCNN expects (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
            )
        y = self.tail(self.body(torch.relu(self.head(x))))
        if self.config.residual:
            n = self.config.residual_channels or min(
                self.config.in_channels, self.config.out_channels
            )
            if n == y.shape[1]:
                y = y + x[:, :n]
            else:
                y = torch.cat([y[:, :n] + x[:, :n], y[:, n:]], dim=1)
        return y
