"""VDSR (Kim, Lee & Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
CVPR 2016, Sec. 3.1 and Fig. 2).

``depth`` 3×3 convolutions of ``features`` channels with ReLU (no BatchNorm), zero padding so the
size is kept, and a global residual: the network sees the bicubic-upsampled low-resolution luminance
``x`` and predicts the residual ``r``, the output is ``x + r`` (Eq. 4 of the paper). It is a
:class:`~knnlab.n3.DnCNN` stage without BatchNorm, which is how N³Net for super-resolution reuses it
(:class:`~knnlab.n3.N3NetSR`: three VDSR networks of depth 7).

Images ``(B, 1, H, W)``: the Y channel (ITU-R BT.601, :func:`knnlab.data.rgb_to_y`) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.hub import PretrainedMixin
from knnlab.n3.dncnn import DnCNN, DnCNNConfig

__all__ = ["VDSR", "VDSRConfig", "identity_init"]


def identity_init(stage: DnCNN) -> None:
    """Zero the last convolution's rows that feed the residual outputs (the first ``min(in, out)``
    channels), so a residual stage starts as the identity on them and a super-resolution network starts
    as bicubic upsampling. With He initialisation alone a 20-layer VDSR starts at ~8 dB on its
    training crops and spends its first hundreds of steps learning to output its input."""
    n = min(stage.config.in_channels, stage.config.out_channels) if stage.config.residual else 0
    with torch.no_grad():
        stage.tail.weight[:n].zero_()
        if stage.tail.bias is not None:
            stage.tail.bias[:n].zero_()


@dataclass
class VDSRConfig:
    """Configuration of :class:`VDSR`; the defaults are the paper's network (20 layers, 64 features)."""

    depth: int = 20  # convolutions, >= 2
    features: int = 64  # hidden channels
    channels: int = 1  # image channels (the paper trains on luminance only)


class VDSR(PretrainedMixin, nn.Module):
    """VDSR: ``(B, C, H, W)`` bicubic-upsampled input → ``(B, C, H, W)`` super-resolved output.

    ``VDSR(depth=20, features=64)``; any input size (fully convolutional).
    """

    config_class = VDSRConfig

    def __init__(self, config: VDSRConfig | None = None, **overrides) -> None:
        super().__init__()
        config = config or VDSRConfig()
        if overrides:
            config = VDSRConfig(**{**config.__dict__, **overrides})
        if config.depth < 2:
            raise InputError(f"VDSRConfig.depth={config.depth}: needs at least 2 convolutions")
        if config.features < 1 or config.channels < 1:
            raise InputError(
                f"VDSRConfig: features={config.features} and channels={config.channels} must be >= 1"
            )
        self.config = config
        # He initialisation (as the paper, after He et al. 2015), then the output layer at zero
        self.net = DnCNN(
            DnCNNConfig(
                in_channels=config.channels,
                out_channels=config.channels,
                features=config.features,
                depth=config.depth,
                batch_norm=False,
                residual=True,
            )
        )
        identity_init(self.net)

    @property
    def min_size(self) -> int:
        """Smallest image side accepted (any: the network is fully convolutional)."""
        return 1

    @property
    def receptive_radius(self) -> int:
        """How many pixels away an output pixel can see (for tiling with exact overlap)."""
        return self.net.receptive_radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config.channels
        if x.ndim != 4 or x.shape[1] != c:
            raise InputError(f"VDSR expects (B, {c}, H, W); got {tuple(x.shape)}")
        return self.net(x)
