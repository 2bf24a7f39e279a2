"""Bi-level retrieval from groups of hash tables (BRIGHT, arXiv 2305.18601, Sec. 3.1 and Fig. 2).

Each group of ``C_key`` key channels owns one :class:`~knnlab.bright.hashgrid.HashGrid` over
``(x, y, key)``: the key codes are nearest-upsampled to the ``H_d × W_d`` feature grid, pixel ``(i, j)``
is queried at ``x = (j + 0.5)/W_d``, ``y = (i + 0.5)/H_d`` and its ``C_key`` key values. From the
retrieved ``(B, P, L·F)`` features a group makes

- a **global** piece: ``g = norm2(mean over pixels)``; an MLP maps ``g`` to a modulation code and
  another MLP maps ``norm2(g)`` to its share of the decoder's style vector;
- a **local** piece: 3 modulated linear layers per pixel (``L·F → hidden → hidden → out``) under
  that modulation code.

The groups' local pieces are concatenated to the ``(B, G·out, H_d, W_d)`` feature grid and their
global pieces to the ``(B, style_dim)`` style vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from knnlab.bright.hashgrid import HashGrid
from knnlab.bright.layers import MLP, ModulatedLinear, normalize_2nd_moment

__all__ = ["KeyGroup", "pixel_coords", "query_points"]


def pixel_coords(h: int, w: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel centres ``(h·w, 2)`` as ``(x, y) = ((j + 0.5)/w, (i + 0.5)/h)``, row-major."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def query_points(keys: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``keys (B, C_key, h_k, w_k)`` in [0, 1] → grid queries ``(B·h·w, 2 + C_key)``: the pixel
    centre then the key values, the keys nearest-upsampled to ``h × w``."""
    b, c = keys.shape[:2]
    up = F.interpolate(keys, size=(h, w), mode="nearest")  # (B, C_key, h, w)
    k = up.permute(0, 2, 3, 1).reshape(b, h * w, c)
    xy = pixel_coords(h, w, device=keys.device, dtype=keys.dtype).expand(b, -1, -1)
    return torch.cat([xy, k], dim=2).reshape(b * h * w, 2 + c)


class KeyGroup(nn.Module):
    """One group: ``keys (B, C_key, h_k, w_k)`` → ``(local (B, out, H_d, W_d), style (B, s))``."""

    def __init__(
        self,
        key_dims: int,
        feature_res: int,
        *,
        n_levels: int,
        n_features: int,
        log2_hashmap_size: int,
        base_resolution: int,
        finest_resolution: int,
        hidden: int,
        out: int,
        style_piece: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.feature_res = feature_res
        self.grid = HashGrid(
            2 + key_dims, n_levels, n_features, log2_hashmap_size, base_resolution,
            finest_resolution=finest_resolution, generator=generator,
        )  # fmt: skip
        d = self.grid.n_output_dims
        mod_dim = 2 * d
        # the release's global-path mapping networks learn at 1/100 of the rate
        self.to_modulation = MLP(d, d, mod_dim, depth=2, lr_multiplier=0.01)
        self.to_style = MLP(d, d, style_piece, depth=3, lr_multiplier=0.01)
        self.local = nn.ModuleList(
            [
                ModulatedLinear(d, hidden, mod_dim),
                ModulatedLinear(hidden, hidden, mod_dim),
                ModulatedLinear(hidden, out, mod_dim, activation=False),
            ]
        )

    def retrieve(self, keys: torch.Tensor) -> torch.Tensor:
        """The raw hash-grid features ``(B, H_d·W_d, L·F)``."""
        r = self.feature_res
        feats = self.grid(query_points(keys, r, r))
        return feats.view(keys.shape[0], r * r, -1)

    def forward(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, r = keys.shape[0], self.feature_res
        feats = self.retrieve(keys)  # (B, P, L·F)
        g = normalize_2nd_moment(feats.mean(dim=1))  # (B, L·F)
        modulation = self.to_modulation(g)
        style = self.to_style(normalize_2nd_moment(g))
        h = feats
        for layer in self.local:
            h = layer(h, modulation)  # (B, P, ·)
        local = h.transpose(1, 2).reshape(b, -1, r, r)
        return local, style
