"""``BrightAutoencoder``: image → bounded key codes → groups of hash tables → StyleGAN2 decoder.

Yang, Wang, Mahdavi-Amiri, Zhang, "BRIGHT: Bi-level Feature Representation of Image Collections
using Groups of Hash Tables" (arXiv 2305.18601; BRICS in v3), Sec. 3. As in the release
(brics-project/brics_code_release, ``training/hash_autoencoder_generator.py``):

- **encode**: LDM-style encoder, 1×1 conv to ``C_z``, sigmoid → key codes ``(B, C_z, h, w)`` in
  (0, 1). In training, N(0, σ²) with σ = 1/(4·H_d) is added and the result clipped to [0, 1]. The
  release keeps that noise on when it evaluates; here ``encode`` adds it only in training mode (or
  when ``noise=True`` is passed), so evaluation and the key codes given to diffusion are
  deterministic.
- **retrieve**: the ``C_z`` channels split into ``G = C_z / C_key`` groups
  (:class:`~knnlab.bright.retrieval.KeyGroup`), each querying its own hash grid at ``(x, y, key)``.
- **decode**: :class:`~knnlab.bright.synthesis.Synthesis` from the ``(B, G·out, H_d, W_d)`` feature
  grid under the concatenated style vector; output in [−1, 1] mapped to [0, 1] (clamped in eval
  mode). Noise inputs are drawn in training mode only (or from an explicit ``generator``).

``pad`` pads the input (MNIST's 28×28 to 32×32 with zeros) and crops the output back, so the model
takes and returns images of ``image_size``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from knnlab.bright.encoder import Encoder
from knnlab.bright.retrieval import KeyGroup
from knnlab.bright.synthesis import Synthesis
from knnlab.errors import InputError
from knnlab.hub import PretrainedMixin

__all__ = ["CONFIGS", "BrightAutoencoder", "BrightConfig", "bright_config"]


@dataclass
class BrightConfig:
    """One BRIGHT autoencoder. Defaults are the ``tiny`` (MNIST) preset."""

    image_size: int = 28  # input/output side (square images)
    image_channels: int = 1
    pad: int = 2  # zero padding on every side before encoding (28 -> 32), cropped after decoding
    # encoder (LDM style): base width, multipliers per level (f = 2^(len − 1)), blocks per level
    encoder_ch: int = 16
    encoder_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 1
    attention: bool = True  # self-attention at the lowest resolution
    key_channels: int = 4  # C_z
    key_group: int = 1  # C_key: key channels per group (1 in the release)
    train_noise: bool = True  # N(0, (1/(4·H_d))²) on the key codes in training, clipped to [0, 1]
    # retrieval: the feature grid and each group's hash grid
    feature_res: int = 16  # H_d = W_d
    n_levels: int = 8
    n_features: int = 2  # F per level
    log2_hashmap_size: int = 12
    base_resolution: int = 4
    finest_resolution: int = 32
    local_hidden: int = 32  # width of the per-pixel modulated linear layers
    group_out: int = 16  # channels each group adds to the feature grid
    style_dim: int = 64  # decoder style vector (split evenly over the groups)
    # decoder: widths at feature_res · 2^i; the output side is feature_res · 2^(len − 1)
    decoder_channels: tuple[int, ...] = (32, 16)
    extra_conv: bool = True

    def __post_init__(self) -> None:
        self.encoder_mult = tuple(self.encoder_mult)
        self.decoder_channels = tuple(self.decoder_channels)
        side = self.image_size + 2 * self.pad
        f = 2 ** (len(self.encoder_mult) - 1)
        out = self.feature_res * 2 ** (len(self.decoder_channels) - 1)
        checks = [
            (side % f == 0, f"image_size + 2·pad = {side} is not divisible by the encoder's f={f}"),
            (out == side, f"decoder output side {out} != image_size + 2·pad = {side}"),
            (self.key_channels % self.key_group == 0,
             f"key_channels={self.key_channels} is not a multiple of key_group={self.key_group}"),
            (self.style_dim % self.groups == 0,
             f"style_dim={self.style_dim} is not a multiple of the {self.groups} groups"),
            (1 <= self.key_group <= 2, f"key_group={self.key_group}; allowed 1 or 2 (grid d ≤ 4)"),
            (self.feature_res % (side // f) == 0 or (side // f) % self.feature_res == 0,
             f"feature_res={self.feature_res} and the key-code side {side // f} do not nest"),
        ]  # fmt: skip
        for ok, msg in checks:
            if not ok:
                raise InputError(f"BrightConfig: {msg}")

    @property
    def groups(self) -> int:
        return self.key_channels // self.key_group

    @property
    def key_res(self) -> int:
        """Side of the key-code map."""
        return (self.image_size + 2 * self.pad) // 2 ** (len(self.encoder_mult) - 1)

    @property
    def code_shape(self) -> tuple[int, int, int]:
        """``(h, w, C_z)``: the code size as the paper writes it (e.g. 16×16×8)."""
        return (self.key_res, self.key_res, self.key_channels)

    @property
    def noise_sigma(self) -> float:
        return 1.0 / (4 * self.feature_res)


CONFIGS: dict[str, BrightConfig] = {
    # MNIST 28×28 (padded to 32): key codes 8×8×4, feature grid 16×16
    "tiny": BrightConfig(),
    # CelebA 64×64: key codes 16×16×4, feature grid 16×16, decoder 16 → 64
    "celeba64": BrightConfig(
        image_size=64, image_channels=3, pad=0, key_channels=4, feature_res=16, n_levels=8,
        n_features=4, log2_hashmap_size=14, base_resolution=8, finest_resolution=64,
        local_hidden=32, group_out=32, style_dim=128, decoder_channels=(64, 32, 16),
    ),
    # the release's FFHQ 256² model: key codes 64×64×4, 16 levels, F = 4, T = 2^18, 16 → 64,
    # local layers 64 → 64 → 64 → 128 per group, decoder 64 → 256 (StyleGAN2 widths)
    "ffhq256": BrightConfig(
        image_size=256, image_channels=3, pad=0, encoder_ch=32, encoder_mult=(1, 2, 4),
        num_res_blocks=2, key_channels=4,
        feature_res=64, n_levels=16, n_features=4, log2_hashmap_size=18, base_resolution=16,
        finest_resolution=64, local_hidden=64, group_out=128, style_dim=512,
        decoder_channels=(512, 256, 128),
    ),
}  # fmt: skip


def bright_config(name: str, **overrides) -> BrightConfig:
    """A copy of a preset (``tiny``, ``celeba64``, ``ffhq256``) with fields changed."""
    if name not in CONFIGS:
        raise InputError(f"--config {name!r}: unknown; choose one of {sorted(CONFIGS)}")
    return dataclasses.replace(CONFIGS[name], **overrides)


class BrightAutoencoder(PretrainedMixin, nn.Module):
    """``x (B, C, S, S)`` in [0, 1] → key codes ``(B, C_z, h, w)`` → reconstruction ``(B, C, S, S)``."""

    config_class = BrightConfig

    def __init__(
        self, config: BrightConfig | None = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.config = c = config or BrightConfig()
        self.encoder = Encoder(
            c.image_channels, c.key_channels, c.encoder_ch, c.encoder_mult, c.num_res_blocks,
            c.attention,
        )  # fmt: skip
        self.groups = nn.ModuleList(
            KeyGroup(
                c.key_group,
                c.feature_res,
                n_levels=c.n_levels,
                n_features=c.n_features,
                log2_hashmap_size=c.log2_hashmap_size,
                base_resolution=c.base_resolution,
                finest_resolution=c.finest_resolution,
                hidden=c.local_hidden,
                out=c.group_out,
                style_piece=c.style_dim // c.groups,
                generator=generator,
            )
            for _ in range(c.groups)
        )
        self.decoder = Synthesis(
            c.groups * c.group_out, c.image_channels, c.style_dim, c.decoder_channels,
            c.extra_conv,
        )  # fmt: skip

    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        want = (c.image_channels, c.image_size, c.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InputError(
                f"BrightAutoencoder: images have shape {tuple(x.shape)}; expected (B, {want[0]}, "
                f"{want[1]}, {want[2]}) for this config"
            )

    def encode(
        self,
        x: torch.Tensor,
        *,
        noise: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Key codes ``(B, C_z, h, w)`` in (0, 1) (training noise when ``noise`` or training)."""
        self._check(x)
        p = self.config.pad
        if p:
            x = F.pad(x, (p, p, p, p))
        z = torch.sigmoid(self.encoder(x * 2 - 1))
        if noise is None:
            noise = self.training and self.config.train_noise
        if noise:
            eps = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)
            z = (z + self.config.noise_sigma * eps).clamp(0, 1)
        return z

    def features(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature grid ``(B, G·out, H_d, W_d)`` and style ``(B, style_dim)`` from key codes."""
        chunks = keys.split(self.config.key_group, dim=1)
        outs = [group(k) for group, k in zip(self.groups, chunks)]
        return torch.cat([o[0] for o in outs], 1), torch.cat([o[1] for o in outs], 1)

    def decode(
        self, keys: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images ``(B, C, S, S)`` in [0, 1] from key codes ``(B, C_z, h, w)``."""
        c = self.config
        if keys.ndim != 4 or tuple(keys.shape[1:]) != (c.key_channels, c.key_res, c.key_res):
            raise InputError(
                f"BrightAutoencoder.decode: key codes have shape {tuple(keys.shape)}; expected "
                f"(B, {c.key_channels}, {c.key_res}, {c.key_res})"
            )
        feat, style = self.features(keys)
        img = (self.decoder(feat, style, generator=generator) + 1) / 2
        if c.pad:
            img = img[..., c.pad : -c.pad, c.pad : -c.pad]
        return img if self.training else img.clamp(0, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reconstruction (B, C, S, S), key codes (B, C_z, h, w))``."""
        keys = self.encode(x)
        return self.decode(keys), keys
