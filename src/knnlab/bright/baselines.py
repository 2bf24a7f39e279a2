"""Baselines for the BRIGHT reconstruction table at equal code size: VQ (VQGAN-style,
``vector_quantize_pytorch.VectorQuantize``), RQ (RQ-VAE, ``ResidualVQ``) and KL (the latent-diffusion
autoencoder: a diagonal Gaussian posterior, KL weight 1e-6), each with the LDM encoder of
:mod:`knnlab.bright.encoder` and its mirror-image conventional conv decoder.

**Code size** is counted as the paper does (VQGAN 16×16, RQ-VAE 16×16×4, BRIGHT 16×16×8): the
number of entries of the latent map, ``h × w × depth``. At a BRIGHT config with key codes
``h×w×C_z`` the baselines get

- VQ: an ``h×w`` map quantised by ``C_z`` heads with separate codebooks → ``h×w×C_z`` indices;
- RQ: an ``h×w`` map quantised by ``C_z`` residual stages → ``h×w×C_z`` indices;
- KL: an ``h×w×C_z`` continuous latent (the posterior mean at evaluation).

The indices carry ``log2(codebook_size)`` bits each; BRIGHT's and KL's entries are floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from knnlab.bright.encoder import ConvDecoder, Encoder
from knnlab.errors import InputError
from knnlab.hub import PretrainedMixin

__all__ = [
    "BASELINES",
    "BaselineAutoencoder",
    "BaselineConfig",
    "baseline_config",
    "kl_divergence",
]

BASELINES = ("vq", "rq", "kl")


@dataclass
class BaselineConfig:
    """A VQ / RQ / KL autoencoder whose code is ``h × w × depth`` (``depth`` = BRIGHT's C_z)."""

    kind: str = "vq"  # "vq" | "rq" | "kl"
    image_size: int = 28
    image_channels: int = 1
    pad: int = 2  # zero padding before encoding, cropped after decoding (MNIST 28 -> 32)
    encoder_ch: int = 16
    encoder_mult: tuple[int, ...] = (1, 2, 4)  # f = 2^(len − 1)
    num_res_blocks: int = 1
    attention: bool = True
    depth: int = 4  # code entries per position: heads (VQ), residual stages (RQ), channels (KL)
    embed_dim: int = 16  # VQ / RQ: channels of the map that is quantised
    codebook_size: int = 256  # VQ / RQ: entries of each codebook
    commitment_weight: float = 0.25  # VQ / RQ commitment loss weight
    kl_weight: float = 1e-6  # KL: weight of the KL term (latent diffusion's 1e-6)

    def __post_init__(self) -> None:
        self.encoder_mult = tuple(self.encoder_mult)
        if self.kind not in BASELINES:
            raise InputError(f"--baseline {self.kind!r}: choose one of {', '.join(BASELINES)}")
        if self.kind == "vq" and self.embed_dim % self.depth:
            raise InputError(
                f"BaselineConfig: embed_dim={self.embed_dim} must be a multiple of depth={self.depth}"
            )

    @property
    def key_res(self) -> int:
        return (self.image_size + 2 * self.pad) // 2 ** (len(self.encoder_mult) - 1)

    @property
    def code_shape(self) -> tuple[int, int, int]:
        return (self.key_res, self.key_res, self.depth)


def baseline_config(kind: str, bright, **overrides) -> BaselineConfig:
    """The ``kind`` baseline at the code size and encoder of a :class:`BrightConfig`."""
    return BaselineConfig(
        kind=kind, image_size=bright.image_size, image_channels=bright.image_channels,
        pad=bright.pad, encoder_ch=bright.encoder_ch, encoder_mult=bright.encoder_mult,
        num_res_blocks=bright.num_res_blocks, attention=bright.attention,
        depth=bright.key_channels, **overrides,
    )  # fmt: skip


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, 1)) summed over latent entries, mean over the batch
    (Kingma & Welling 2014, App. B): ``½ Σ (μ² + σ² − 1 − log σ²)``."""
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1).mean()


class BaselineAutoencoder(PretrainedMixin, nn.Module):
    """``x (B, C, S, S)`` in [0, 1] → code → reconstruction; ``forward`` returns
    ``(reconstruction, regularisation loss, indices or latent)``."""

    config_class = BaselineConfig

    def __init__(self, config: BaselineConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or BaselineConfig()
        latent = c.depth if c.kind == "kl" else c.embed_dim
        enc_out = 2 * latent if c.kind == "kl" else latent
        self.encoder = Encoder(
            c.image_channels, enc_out, c.encoder_ch, c.encoder_mult, c.num_res_blocks, c.attention
        )
        self.decoder = ConvDecoder(
            latent, c.image_channels, c.encoder_ch, c.encoder_mult, c.num_res_blocks, c.attention
        )
        self.quantizer: nn.Module | None = None
        if c.kind == "vq":
            from vector_quantize_pytorch import VectorQuantize

            self.quantizer = VectorQuantize(
                dim=c.embed_dim, codebook_size=c.codebook_size, heads=c.depth,
                separate_codebook_per_head=True, codebook_dim=c.embed_dim // c.depth,
                commitment_weight=c.commitment_weight,
            )  # fmt: skip
        elif c.kind == "rq":
            from vector_quantize_pytorch import ResidualVQ

            self.quantizer = ResidualVQ(
                dim=c.embed_dim, num_quantizers=c.depth, codebook_size=c.codebook_size,
                commitment_weight=c.commitment_weight,
            )  # fmt: skip

    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        want = (c.image_channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InputError(
                f"{c.kind.upper()} autoencoder: images have shape {tuple(x.shape)}; expected "
                f"(B, {want[0]}, {want[1]}, {want[2]})"
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(latent (B, D, h, w) fed to the decoder, regularisation loss, code)``: the code is
        the indices ``(B, h, w, depth)`` for VQ / RQ, the posterior sample (train) or mean
        (eval) for KL."""
        self._check(x)
        c = self.config
        if c.pad:
            x = F.pad(x, (c.pad,) * 4)
        h = self.encoder(x * 2 - 1)
        if c.kind == "kl":
            mean, logvar = h.chunk(2, dim=1)
            logvar = logvar.clamp(-30.0, 20.0)
            z = mean + (0.5 * logvar).exp() * torch.randn_like(mean) if self.training else mean
            return z, c.kl_weight * kl_divergence(mean, logvar), z
        hh, ww = h.shape[-2:]
        seq = rearrange(h, "b c h w -> b (h w) c")
        assert self.quantizer is not None
        q, idx, loss = self.quantizer(seq)
        z = rearrange(q, "b (h w) c -> b c h w", h=hh, w=ww)
        idx = idx.reshape(idx.shape[0], hh, ww, -1)
        return z, loss.sum(), idx

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (clamped in eval mode) from the latent ``(B, D, h, w)``."""
        c = self.config
        img = (self.decoder(z) + 1) / 2
        if c.pad:
            img = img[..., c.pad : -c.pad, c.pad : -c.pad]
        return img if self.training else img.clamp(0, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, reg, code = self.encode(x)
        return self.decode(z), reg, code
