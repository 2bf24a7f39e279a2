"""Super-resolution inference: model lookup by name, Y-channel processing of gray and RGB images, tiling.

``load_upscaler(name)`` gives an :class:`Upscaler` for

- ``"bicubic"``: the MATLAB-exact bicubic upsampling alone (the baseline);
- ``"n3net"`` / ``"vdsr"``: the :class:`~knnlab.n3.N3NetSR` / :class:`~knnlab.n3.VDSR` shipped in
  ``knnlab/assets/n3net_sr`` and ``knnlab/assets/vdsr_sr`` (trained by ``knnlab experiment sr``);
- a folder written by ``save_pretrained`` (a ``knnlab train sr`` run folder works too).

The networks see the bicubic-upsampled luminance; :meth:`Upscaler.upscale` takes an RGB or gray
image ``(C, H, W)`` in [0, 1] and returns ``(C, s·H, s·W)``. For RGB only Y goes through the network,
and the chroma is the bicubic upsampling's: the output is ``rgb_up + (Y_sr − Y_up) · 255/219`` on
every channel, which changes BT.601 Y by exactly ``Y_sr − Y_up`` and leaves Cb and Cr (whose
coefficients sum to zero) as bicubic made them. Large images are processed in overlapping tiles
(:func:`~knnlab.n3.denoise_tiled`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knnlab.data import imresize, rgb_to_y
from knnlab.errors import DataNotFoundError, InputError
from knnlab.n3.denoise import DEFAULT_OVERLAP, DEFAULT_TILE, denoise_tiled
from knnlab.n3.sr_data import check_scale

__all__ = ["ASSETS", "Upscaler", "load_sr_model", "load_upscaler"]

#: The shipped models: name -> folder (reproduced by ``knnlab experiment sr``).
ASSETS = {
    "n3net": Path(__file__).resolve().parents[1] / "assets" / "n3net_sr",
    "vdsr": Path(__file__).resolve().parents[1] / "assets" / "vdsr_sr",
}


def load_sr_model(path: str | Path, *, map_location: Any = "cpu") -> nn.Module:
    """A VDSR or N3NetSR saved with ``save_pretrained``, by folder (or a run folder holding ``model/``)."""
    from knnlab.n3.n3net_sr import N3NetSR
    from knnlab.n3.vdsr import VDSR

    folder = Path(path)
    if (folder / "model" / "config.json").is_file():
        folder = folder / "model"
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise DataNotFoundError(
            f"--model {str(path)!r}: not bicubic, n3net or vdsr, and not a folder with config.json; "
            "pass a folder written by `knnlab train sr` / save_pretrained"
        )
    kind = json.loads(cfg.read_text()).get("model_type")
    classes: dict[str, Any] = {"N3NetSR": N3NetSR, "VDSR": VDSR}
    if kind not in classes:
        raise InputError(
            f"{cfg}: model_type {kind!r} is not a super-resolution model {sorted(classes)}"
        )
    return classes[kind].from_pretrained(folder, map_location=map_location)


@dataclass
class Upscaler:
    """A named super-resolution method on bicubic-upsampled Y ``(B, 1, H, W)`` in [0, 1].

    ``fn`` is ``None`` for bicubic (the upsampled image is the answer).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None
    min_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    tile: int | None = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    model: nn.Module | None = None

    def check_size(self, h: int, w: int, scale: int, what: str = "image") -> None:
        """Refuse a low-resolution ``h × w`` image whose upsampling is below :attr:`min_size`."""
        if min(h, w) * scale < self.min_size:
            need = -(-self.min_size // scale)
            raise InputError(
                f"{what} is {h}×{w}; {self.name} at ×{scale} needs at least {need}×{need} pixels "
                f"(upsampled ≥ {self.min_size}); use a larger image or --model vdsr/bicubic"
            )

    @torch.no_grad()
    def refine(self, up_y: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` bicubic-upsampled Y → super-resolved Y (same shape, not clipped)."""
        if up_y.ndim != 4 or up_y.shape[1] != 1:
            raise InputError(f"{self.name}: expected (B, 1, H, W) Y, got {tuple(up_y.shape)}")
        if self.fn is None:
            return up_y
        if self.tile and self.tile < self.min_size:
            raise InputError(
                f"--tile {self.tile} is below the model's minimum size {self.min_size}"
            )
        x = up_y.to(self.device, torch.float32)
        out = torch.cat(
            [
                denoise_tiled(self.fn, x[i : i + 1], tile=self.tile, overlap=self.overlap)
                for i in range(x.shape[0])
            ]
        )
        return out.to(up_y.device, up_y.dtype)

    @torch.no_grad()
    def upscale(self, image: torch.Tensor, scale: int) -> torch.Tensor:
        """``(C, H, W)`` gray (C = 1) or RGB (C = 3) in [0, 1] → ``(C, s·H, s·W)`` clipped to [0, 1]."""
        scale = check_scale(scale)
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise InputError(
                f"{self.name}: expected a gray or RGB image (C, H, W) with C = 1 or 3, got "
                f"{tuple(image.shape)}"
            )
        h, w = image.shape[-2:]
        self.check_size(h, w, scale)
        up = imresize(image.double(), size=(h * scale, w * scale))
        if image.shape[0] == 1:
            out = self.refine(up[None].float())[0].double()
        else:
            y_up = rgb_to_y(up)
            y_sr = self.refine(y_up[None].float())[0].double()
            out = up + (y_sr - y_up) * (255.0 / 219.0)
        return out.clamp(0.0, 1.0).to(image.dtype)


def load_upscaler(
    name: str | Path,
    *,
    device: torch.device | str = "cpu",
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Upscaler:
    """Resolve ``--model`` to an :class:`Upscaler` (see the module docstring for the names)."""
    device = torch.device(device)
    key = str(name)
    if key.lower() == "bicubic":
        return Upscaler("bicubic", None, tile=None)
    if key.lower() in ASSETS:
        folder = ASSETS[key.lower()]
        if not (folder / "config.json").is_file():
            raise DataNotFoundError(
                f"--model {key}: the shipped weights are missing from {folder}; reinstall knnlab or "
                "train them with `knnlab experiment sr`"
            )
        model = load_sr_model(folder)
        label = key.lower()
    else:
        model = load_sr_model(key)
        label = Path(key).name or key
    model = model.to(device).eval()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return model(x)

    return Upscaler(
        label,
        fn,
        min_size=int(getattr(model, "min_size", 1)),
        device=device,
        tile=tile,
        overlap=overlap,
        model=model,
    )
