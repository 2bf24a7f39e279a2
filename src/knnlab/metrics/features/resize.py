"""Resizing images to a feature network's input, as the two FID implementations in use do it.

* ``"clean"`` (default): clean-fid's resize (Parmar et al., "On Aliased Resizing and Surprising
  Subtleties in GAN Evaluation", CVPR 2022; ``cleanfid.resize.make_resizer("PIL", False,
  "bicubic", size)``): 8-bit pixels, each channel resized by Pillow's bicubic filter in float mode
  (``Image.fromarray(channel.astype(float32), mode="F").resize(size, BICUBIC)``), which widens the
  kernel when downsampling (antialiased), clipped to ``[0, 255]`` and not re-quantised.
* ``"legacy"``: pytorch-fid's ``F.interpolate(x, size, mode="bilinear", align_corners=False)``
  on float images in ``[0, 1]`` (no antialiasing: aliased when downsampling).

Images enter as ``uint8 (H, W, C)`` arrays (how clean-fid reads files) and leave as float32
``(C, h, w)`` tensors in ``[0, 1]``. ``center_crop`` first cuts the centred square of the short side
(CelebA's aligned 178×218 faces -> 178×178), as the face feature network expects.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from knnlab.errors import InputError

__all__ = ["RESIZE_FILTERS", "center_crop_square", "resize_clean", "resize_legacy", "to_input"]

RESIZE_FILTERS = ("clean", "legacy")


def center_crop_square(img: np.ndarray) -> np.ndarray:
    """The centred ``s × s`` square of ``img (H, W, C)``, ``s = min(H, W)``."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top : top + s, left : left + s]


def resize_clean(img: np.ndarray, size: int) -> torch.Tensor:
    """clean-fid's resize of ``img`` uint8 ``(H, W, C)`` to ``(C, size, size)`` float32 in [0, 1]."""
    if img.dtype != np.uint8 or img.ndim != 3:
        raise InputError(f"resize_clean: expected uint8 (H, W, C), got {img.dtype} {img.shape}")
    if img.shape[:2] == (size, size):
        out = img.astype(np.float32)
    else:
        chans = [
            np.asarray(
                Image.fromarray(img[:, :, c].astype(np.float32), mode="F").resize(
                    (size, size), resample=Image.Resampling.BICUBIC
                )
            )
            for c in range(img.shape[2])
        ]
        out = np.clip(np.stack(chans, axis=2), 0.0, 255.0)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).div_(255.0)


def resize_legacy(img: np.ndarray, size: int) -> torch.Tensor:
    """pytorch-fid's bilinear resize (``align_corners=False``, no antialias) of uint8 ``(H, W, C)``
    to ``(C, size, size)`` float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]


def to_input(
    img: np.ndarray, size: int | None, resize: str = "clean", *, center_crop: bool = False
) -> torch.Tensor:
    """One uint8 ``(H, W, C)`` image -> the network's float32 ``(C, size, size)`` input in [0, 1]
    (``size=None``: no resize)."""
    if resize not in RESIZE_FILTERS:
        raise InputError(f"resize={resize!r}: choose one of {', '.join(RESIZE_FILTERS)}")
    if center_crop:
        img = center_crop_square(img)
    if size is None:
        return _plain(img)
    return resize_clean(img, size) if resize == "clean" else resize_legacy(img, size)


def _plain(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)
