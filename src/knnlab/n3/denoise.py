"""Denoising with a trained model or a baseline: model lookup by name, channel-wise and tiled inference.

``load_denoiser(name, sigma)`` gives a :class:`Denoiser` for

- ``"n3net-official"`` (the authors' checkpoint for ``sigma``) or ``"n3net-official-sigma{25,50,70}"``,
- ``"bm3d"`` (the ``bm3d`` package, ``sigma_psd = sigma / 255``),
- a folder written by ``save_pretrained`` (a :class:`~knnlab.n3.N3Net` or :class:`~knnlab.n3.DnCNN`,
  e.g. the ``model/`` folder of ``knnlab train denoise``, or that run folder itself).

``Denoiser.__call__`` takes ``(C, H, W)`` or ``(B, C, H, W)`` noisy images in [0, 1] (any C: gray
models run channel by channel) and returns the same shape. Images larger than ``tile`` are cut into
overlapping ``tile × tile`` tiles whose outputs are blended (linear ramps, after discarding a margin at
interior tile edges), which bounds memory. A convolutional net whose receptive field fits in the margin
(DnCNN) gives exactly the untiled result; N³Net matches within a small tolerance (its search window
reaches further than any practical overlap).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from knnlab.errors import DataNotFoundError, InputError, KnnlabError
from knnlab.progress import progress

__all__ = [
    "Denoiser",
    "denoise_tiled",
    "load_denoiser",
    "load_model",
    "tile_starts",
]

log = logging.getLogger(__name__)

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of ``tile``-long windows covering ``[0, size)`` with at least ``overlap`` shared
    pixels; the last window is shifted back to end at ``size`` (never shrunk)."""
    if size <= tile:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise InputError(f"tile={tile} must be larger than overlap={overlap}")
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _ramp(length: int, overlap: int, margin: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weight of a tile: 0 on the ``margin`` pixels next to an interior edge, then a linear
    ramp up to 1 over the rest of the overlap; 1 next to image borders."""
    d = torch.arange(length, dtype=torch.float64)
    width = max(1, overlap - 2 * margin + 1)
    w = torch.ones(length, dtype=torch.float64)
    if ramp_start:
        w = torch.minimum(w, ((d - margin + 1) / width).clamp(0, 1))
    if ramp_end:
        w = torch.minimum(w, ((length - 1 - d - margin + 1) / width).clamp(0, 1))
    return w


@torch.no_grad()
def denoise_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    margin: int | None = None,
    desc: str = "tiles",
) -> torch.Tensor:
    """Apply ``fn`` ``(B, C, H, W) → (B, C', H, W)`` tile by tile and blend.

    ``tile=None`` (or 0), or an image no larger than ``tile``, runs ``fn`` once. ``margin`` (default
    ``overlap // 4``) pixels next to interior tile edges are discarded; the rest of the overlap is blended
    linearly. Needs ``overlap >= 2 * margin``.
    """
    if x.ndim != 4:
        raise InputError(f"denoise_tiled: expected (B, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if not tile or (h <= tile and w <= tile):
        return fn(x)
    margin = overlap // 4 if margin is None else margin
    if overlap < 2 * margin or overlap >= tile:
        raise InputError(
            f"tiling: need 2·margin <= overlap < tile; got margin={margin}, overlap={overlap}, tile={tile}"
        )
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    th, tw = min(tile, h), min(tile, w)
    acc: torch.Tensor | None = None
    wsum = torch.zeros(1, 1, h, w, dtype=torch.float64, device=x.device)
    boxes = [(y0, x0) for y0 in ys for x0 in xs]
    for y0, x0 in progress(boxes, desc=desc, total=len(boxes)):
        out = fn(x[..., y0 : y0 + th, x0 : x0 + tw])
        wy = _ramp(th, overlap, margin, y0 > 0, y0 + th < h)
        wx = _ramp(tw, overlap, margin, x0 > 0, x0 + tw < w)
        wt = (wy[:, None] * wx[None, :]).to(x.device)
        if acc is None:
            acc = torch.zeros(
                out.shape[0], out.shape[1], h, w, dtype=torch.float64, device=x.device
            )
        acc[..., y0 : y0 + th, x0 : x0 + tw] += out.double() * wt
        wsum[..., y0 : y0 + th, x0 : x0 + tw] += wt
    assert acc is not None and bool((wsum > 0).all())
    return (acc / wsum).to(x.dtype)


def load_model(path: str | Path, *, map_location="cpu") -> nn.Module:
    """A model saved with ``save_pretrained`` (N3Net or DnCNN), by folder; a training run folder whose
    ``model/`` subfolder holds it works too."""
    import json

    from knnlab.n3.dncnn import DnCNN
    from knnlab.n3.n3net import N3Net

    folder = Path(path)
    if (folder / "model" / "config.json").is_file():  # a `knnlab train denoise` run folder
        folder = folder / "model"
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise DataNotFoundError(
            f"--model {str(path)!r}: not a known model name and not a folder with config.json; use "
            "n3net-official, bm3d, or a folder written by `knnlab train denoise` / save_pretrained"
        )
    try:
        raw = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--model {str(path)!r}: {cfg.name} is not valid JSON ({e})") from e
    kind = raw.get("model_type") if isinstance(raw, dict) else None
    classes: dict[str, Any] = {"N3Net": N3Net, "DnCNN": DnCNN}
    if kind not in classes:
        raise InputError(
            f"--model {str(path)!r}: {cfg.name} has model_type {kind!r}, not one of {sorted(classes)}"
        )
    from safetensors import SafetensorError

    try:
        return classes[kind].from_pretrained(folder, map_location=map_location)
    except KnnlabError as e:
        raise type(e)(f"--model {str(path)!r}: {e}") from e
    except (SafetensorError, TypeError, ValueError, OSError) as e:
        # wrong field types in config.json, a truncated or corrupt model.safetensors
        raise InputError(
            f"--model {str(path)!r}: cannot load the model ({type(e).__name__}: {e})"
        ) from e


@dataclass
class Denoiser:
    """A named denoiser for Gaussian noise of level ``sigma`` (0–255 scale).

    ``fn`` maps ``(B, 1, H, W)`` noisy gray images in [0, 1] to denoised ones; :meth:`__call__` adds
    channel-wise processing, tiling, device handling and the minimum-size check.
    """

    name: str
    sigma: float
    fn: Callable[[torch.Tensor], torch.Tensor]
    min_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    tile: int | None = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    model: nn.Module | None = None

    def check_size(self, h: int, w: int, what: str = "image") -> None:
        if min(h, w) < self.min_size:
            raise InputError(
                f"{what} is {h}×{w}; {self.name} needs at least {self.min_size}×{self.min_size} "
                "pixels; pad or upscale it"
                + (", or use --model bm3d" if self.name != "bm3d" else "")
            )

    @torch.no_grad()
    def __call__(self, noisy: torch.Tensor) -> torch.Tensor:
        if noisy.ndim not in (3, 4):
            raise InputError(
                f"{self.name}: expected (C, H, W) or (B, C, H, W), got {tuple(noisy.shape)}"
            )
        squeeze = noisy.ndim == 3
        x = noisy[None] if squeeze else noisy
        b, c, h, w = x.shape
        self.check_size(h, w)
        gray = x.reshape(b * c, 1, h, w).to(self.device, torch.float32)
        if self.tile and self.tile < self.min_size:
            raise InputError(f"--tile {self.tile} is below the minimum size {self.min_size}")
        out = torch.cat(
            [
                denoise_tiled(self.fn, gray[i : i + 1], tile=self.tile, overlap=self.overlap)
                for i in range(b * c)
            ]
        )
        out = out.reshape(b, c, h, w).to(noisy.device, noisy.dtype)
        return out[0] if squeeze else out


def _bm3d_fn(sigma: float) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import bm3d
    except ImportError as e:  # an optional dependency
        raise InputError(
            "--model bm3d needs the bm3d package: pip install 'knnlab[baselines]' (or pip install bm3d)"
        ) from e

    def fn(x: torch.Tensor) -> torch.Tensor:
        outs = []
        for img in x.reshape(-1, *x.shape[-2:]):
            z = img.detach().cpu().double().numpy()
            outs.append(torch.from_numpy(np.asarray(bm3d.bm3d(z, sigma_psd=sigma / 255.0))))
        return torch.stack(outs).reshape(x.shape).to(x.device, x.dtype)

    return fn


def _net_fn(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return model(x)

    return fn


def load_denoiser(
    name: str | Path,
    sigma: float,
    *,
    device: torch.device | str = "cpu",
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Denoiser:
    """Resolve ``--model`` to a :class:`Denoiser` (see the module docstring for the names)."""
    from knnlab.n3.n3net import N3Net
    from knnlab.n3.pretrained import official_sigma

    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(
            f"--sigma {sigma}: the noise level must be a positive number on the 0-255 scale, e.g. 25"
        )
    device = torch.device(device)
    key = str(name)
    if key.lower() == "bm3d":
        # BM3D runs on the CPU on whole images; it needs no tiling
        # the bm3d package fails on images under 9×9 (its 8×8 blocks; a crash at exactly 8)
        return Denoiser(
            "bm3d", sigma, _bm3d_fn(sigma), min_size=9, tile=None, device=torch.device("cpu")
        )
    if key.lower() == "dncnn":
        raise DataNotFoundError(
            "--model dncnn: there are no published DnCNN weights here; train one with "
            "`knnlab train denoise --model dncnn --sigma S --out DIR` and pass --model DIR"
        )
    off = official_sigma(key, default_sigma=round(sigma))
    if off is not None:
        if off != sigma:
            log.warning("using the sigma=%d checkpoint for noise of sigma=%g", off, sigma)
        model: nn.Module = N3Net.from_pretrained(f"n3net-official-sigma{off}")
        label = f"n3net-official-sigma{off}"
    else:
        model = load_model(key)
        label = Path(key).name or key
    model = model.to(device).eval()
    min_size = int(getattr(model, "min_size", 1))
    return Denoiser(
        label,
        sigma,
        _net_fn(model),
        min_size=min_size,
        device=device,
        tile=tile,
        overlap=overlap,
        model=model,
    )
