"""Model configurations for real-noise denoising: N³Net and DnCNN with noise-level maps as input.

Inputs ``(B, 3, H, W)``: the noisy gray image, a constant map of ``a`` and one of ``b`` (the noise-level
function ``σ²(x) = a·x + b``); output ``(B, 1, H, W)``. The first stage is residual on the image channel
only (the released ``net.blocks[0].nplanes_residual = 1``).

Presets (``N3NET_REAL_PRESETS``):

- ``"released"``: the real-noise model of the paper (Plötz & Roth 2018, Sec. 5.3; visinf/n3net
  ``results_poissongaussian_denoising``): 128 features, stage depth 9, 32 channels between stages, k = 3.
- ``"code-default"``: the defaults of visinf/n3net ``main_pg.py``: 64 / 6 / 8, k = 7.
- ``"cpu"``: the small model knnlab trains in minutes on one CPU thread and ships as ``n3net-real``:
  32 features, stage depth 4, 8 channels between stages, k = 3, embedding/temperature CNNs of 32
  features (about 0.13 M parameters).

``dncnn_real_config(preset)`` is the matching plain CNN: same features, ``num_stages · stage_depth``
convolutions, same inputs.
"""

from __future__ import annotations

from dataclasses import replace

from knnlab.errors import InputError
from knnlab.n3.dncnn import DnCNNConfig
from knnlab.n3.n3net import N3NetConfig

__all__ = ["N3NET_REAL_PRESETS", "dncnn_real_config", "n3net_real_config"]

_BASE = N3NetConfig(in_channels=3, out_channels=1)

N3NET_REAL_PRESETS: dict[str, N3NetConfig] = {
    "released": replace(_BASE, features=128, stage_depth=9, intermediate_channels=32, k=3),
    "code-default": replace(_BASE),
    "cpu": replace(
        _BASE, features=32, stage_depth=4, intermediate_channels=8, k=3, embed_features=32
    ),
}


def n3net_real_config(preset: str = "cpu") -> N3NetConfig:
    """A copy of the N³Net-real preset ``preset`` (see the module docstring)."""
    if preset not in N3NET_REAL_PRESETS:
        raise InputError(f"--preset {preset!r}: choose one of {', '.join(N3NET_REAL_PRESETS)}")
    return replace(N3NET_REAL_PRESETS[preset])


def dncnn_real_config(preset: str = "cpu") -> DnCNNConfig:
    """DnCNN-real matching the N³Net preset: 3 → 1 channels, residual on the image channel."""
    c = n3net_real_config(preset)
    return DnCNNConfig(
        in_channels=c.in_channels,
        out_channels=c.out_channels,
        features=c.features,
        depth=c.num_stages * c.stage_depth,
        residual=True,
        residual_channels=1,
    )
