"""The built-in GAN: a small generator with a mapping network (Z -> W -> image) and a discriminator,
for 28x28 grayscale digits (MNIST) and, with ``image_size=64, image_channels=3``, 64x64 RGB faces
(CelebA, :data:`CELEBA64_GAN_DIR`).

The generator has both latent spaces of StyleGAN (Karras et al. 2019): ``z ~ N(0, I)`` of size
``latent_dim`` is normalised (pixel norm) and sent through a ``mapping_layers``-deep MLP to ``w``; the
synthesis network is a DCGAN-style stack (Radford et al. 2016) of transposed convolutions from ``w``
to an image in ``[-1, 1]``. ``w_avg``, a running mean of ``w`` kept during training (as StyleGAN does),
is the centre of W-space truncation.

Why ``latent_dim = 64`` and not StyleGAN's 512: MNIST has a small intrinsic dimension (about 10-15
by most estimates), a 64-d latent is ample for it and keeps the model small enough to train on two
CPU cores in minutes. Hubness grows with dimension, so in 64-d it is weaker than in 512-d: the hub
thresholds of the experiment are chosen for this size (see ``knnlab.hubness.experiment``).

``Generator.save_pretrained(dir)`` writes ``config.json`` + ``model.safetensors``; ``from_pretrained``
rebuilds it (:class:`knnlab.hub.PretrainedMixin`). ``builtin_generator()`` loads the shipped weights in ``knnlab/assets/gan/``, which
``knnlab train gan`` reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from knnlab.errors import DataNotFoundError, InputError
from knnlab.hub import PretrainedMixin

__all__ = [
    "BUILTIN_GAN_DIR",
    "CELEBA64_GAN_DIR",
    "Discriminator",
    "GANConfig",
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "builtin_generator",
    "celeba64_generator",
    "pixel_norm",
]

BUILTIN_GAN_DIR = Path(__file__).resolve().parents[1] / "assets" / "gan"
CELEBA64_GAN_DIR = Path(__file__).resolve().parents[1] / "assets" / "gan_celeba64"
_BASE = {28: (7, 2), 64: (4, 4)}  # image side -> (side of the first feature map, 2x upsamplings)


@dataclass
class GANConfig:
    """Sizes of the built-in GAN (defaults: the shipped model)."""

    latent_dim: int = 64  # size of z ~ N(0, I)
    w_dim: int = 64  # size of the intermediate latent w
    mapping_layers: int = 3  # depth of the z -> w MLP
    g_channels: int = 64  # generator width at the first feature map (halved at each upsampling)
    d_channels: int = 32  # discriminator width after its first 2x downsampling (then doubled)
    image_size: int = 28  # output side: 28 (from 7x7, two upsamplings) or 64 (from 4x4, four)
    image_channels: int = 1  # 1: grayscale, 3: RGB
    w_avg_beta: float = 0.995  # decay of the running mean of w during training

    def __post_init__(self) -> None:
        if self.image_size not in _BASE:
            raise InputError(f"GANConfig.image_size={self.image_size}: use 28 or 64")
        _, ups = _BASE[self.image_size]
        if self.g_channels % 2**ups:
            raise InputError(
                f"GANConfig.g_channels={self.g_channels} must be divisible by {2**ups} "
                f"for image_size={self.image_size}"
            )
        for f in ("latent_dim", "w_dim", "mapping_layers", "g_channels", "d_channels"):
            if getattr(self, f) < 1:
                raise InputError(f"GANConfig.{f}={getattr(self, f)} must be >= 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GANConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each row of ``x`` ``(B, D)`` to unit mean square (Karras et al. 2018, eq. 1)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """``z (B, latent_dim) -> w (B, w_dim)``: pixel norm, then an MLP with leaky ReLUs."""

    def __init__(self, latent_dim: int, w_dim: int, num_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = latent_dim
        for _ in range(num_layers):
            layers += [nn.Linear(d, w_dim), nn.LeakyReLU(0.2)]
            d = w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_norm(z))


class SynthesisNetwork(nn.Module):
    """``w (B, w_dim) -> images (B, C, S, S)`` in ``[-1, 1]``: a ``b x b`` map (b = 7 for S = 28,
    4 for S = 64), then 2x transposed-convolution upsamplings that halve the width, then a 3x3
    convolution to ``C`` channels."""

    def __init__(
        self, w_dim: int, channels: int, image_channels: int, image_size: int = 28
    ) -> None:
        super().__init__()
        c = channels
        self.c, (self.base, ups) = c, _BASE[image_size]
        n0 = c * self.base * self.base
        self.fc = nn.Sequential(nn.Linear(w_dim, n0), nn.BatchNorm1d(n0), nn.ReLU())
        layers: list[nn.Module] = []
        for i in range(ups):  # e.g. 7 -> 14 -> 28
            cin, cout = c >> i, c >> (i + 1)
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
            layers.append(nn.ReLU())
        layers += [nn.Conv2d(c >> ups, image_channels, 3, 1, 1), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = self.fc(w).view(-1, self.c, self.base, self.base)  # (B, C, b, b)
        return self.up(x)


class Generator(PretrainedMixin, nn.Module):
    """``z -> w -> image``; ``forward(z)`` returns images ``(B, C, 28, 28)`` in ``[-1, 1]``.

    ``mapping`` and ``synthesis`` are exposed for W-space sampling; ``w_avg`` ``(w_dim,)`` is the
    running mean of ``w`` over training (the centre of ψ-truncation).
    """

    output_range = (-1.0, 1.0)
    config_class = GANConfig
    legacy_model_types = ("knnlab.GAN",)
    w_avg: torch.Tensor

    def __init__(self, config: GANConfig | None = None) -> None:
        super().__init__()
        self.config = config or GANConfig()
        cfg = self.config
        self.mapping = MappingNetwork(cfg.latent_dim, cfg.w_dim, cfg.mapping_layers)
        self.synthesis = SynthesisNetwork(
            cfg.w_dim, cfg.g_channels, cfg.image_channels, cfg.image_size
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InputError(
                f"z has shape {tuple(z.shape)}; the generator expects (B, {self.latent_dim})"
            )
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1.0 - self.config.w_avg_beta)
        if truncation_psi != 1.0:
            w = self.w_avg + truncation_psi * (w - self.w_avg)
        return self.synthesis(w)


class Discriminator(nn.Module):
    """``images (B, C, S, S)`` in ``[-1, 1]`` -> logits ``(B,)``: 4x4 stride-2 convolutions that
    double the width (28 -> 14 -> 7; 64 -> 32 -> 16 -> 8 -> 4), then a linear layer; spectral norm
    on every layer (Miyato et al. 2018)."""

    def __init__(self, config: GANConfig | None = None) -> None:
        super().__init__()
        cfg = config or GANConfig()
        c = cfg.d_channels
        base, downs = _BASE[cfg.image_size]
        layers: list[nn.Module] = []
        cin = cfg.image_channels
        for i in range(downs):
            layers += [spectral_norm(nn.Conv2d(cin, c << i, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = c << i
        layers += [nn.Flatten(), spectral_norm(nn.Linear(cin * base * base, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def builtin_generator(device: str | torch.device = "cpu") -> Generator:
    """The shipped generator (``knnlab/assets/gan``), trained by ``knnlab train gan``."""
    if not (BUILTIN_GAN_DIR / "model.safetensors").is_file():
        raise DataNotFoundError(
            f"the built-in GAN weights are missing from {BUILTIN_GAN_DIR}; "
            "recreate them with `knnlab train gan --out <that folder>`"
        )
    return Generator.from_pretrained(BUILTIN_GAN_DIR, map_location=device)


def celeba64_generator(device: str | torch.device = "cpu") -> Generator:
    """The shipped 64x64 face generator (``knnlab/assets/gan_celeba64``), trained on CelebA6000's
    train split by ``knnlab train gan --data CelebA6000``."""
    if not (CELEBA64_GAN_DIR / "model.safetensors").is_file():
        raise DataNotFoundError(
            f"the CelebA 64x64 GAN weights are missing from {CELEBA64_GAN_DIR}; recreate them with "
            "`knnlab train gan --data CelebA6000 --out <its parent folder>`"
        )
    return Generator.from_pretrained(CELEBA64_GAN_DIR, map_location=device)
