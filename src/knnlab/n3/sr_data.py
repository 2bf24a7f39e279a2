"""Super-resolution data: the Y channel of images, bicubic degradation, and multi-scale training pairs.

Degradation (VDSR's protocol, Kim et al. 2016): crop the high-resolution Y to a multiple of the scale
``s`` (``modcrop``), downscale by ``1/s`` and upscale by ``s`` with the MATLAB-exact bicubic
:func:`knnlab.data.imresize`; the network maps the blurry upsampled image back to the sharp one.

:class:`SRPatchDataset` gives training pairs. Item ``i`` is a *group*: one random crop per scale of
``scales`` (``(S, 1, P, P)`` inputs and targets), so every batch mixes ×2, ×3 and ×4 in equal parts.
Each crop comes from :class:`knnlab.data.PatchDataset`'s draw (image, position, one of the 8 flips
and 90° rotations) over that scale's degraded images, so item ``i`` is a pure function of
``(seed, epoch, i)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from knnlab.data import PatchDataset, dataset_dir, imresize, list_images, read_image, rgb_to_y
from knnlab.data.datasets import DATASETS
from knnlab.data.patches import dihedral
from knnlab.errors import InputError
from knnlab.progress import progress

__all__ = [
    "SCALES",
    "SRPatchDataset",
    "bicubic_pair",
    "check_scale",
    "load_y_images",
    "modcrop",
    "quantize",
    "to_y",
]

log = logging.getLogger(__name__)

#: The scale factors of the benchmarks (and of one N3NetSR model).
SCALES = (2, 3, 4)


def check_scale(scale: int, what: str = "--scale") -> int:
    """``scale`` as an int in 2..8, else an :class:`InputError` naming ``what``."""
    if int(scale) != scale or not 2 <= int(scale) <= 8:
        raise InputError(
            f"{what} {scale!r}: use an integer factor from 2 to 8 (benchmarks: 2, 3, 4)"
        )
    return int(scale)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round ``[0, 1]`` values to 8 bits (MATLAB's ``uint8``: clip, round half away from zero)."""
    return torch.floor(x.clamp(0.0, 1.0) * 255.0 + 0.5) / 255.0


def to_y(image: torch.Tensor) -> torch.Tensor:
    """The luminance a super-resolution benchmark scores: ``(..., 3, H, W)`` RGB → BT.601 Y
    (:func:`knnlab.data.rgb_to_y`, MATLAB's ``rgb2ycbcr``), quantised to 8 bits as ``rgb2ycbcr`` on a
    ``uint8`` image is; a gray ``(..., 1, H, W)`` image *is* its Y (the benchmark code uses it as is)."""
    if image.shape[-3] == 1:
        return image
    return quantize(rgb_to_y(image))


def modcrop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop ``(..., H, W)`` at the bottom and right to multiples of ``scale``."""
    h, w = image.shape[-2:]
    return image[..., : h - h % scale, : w - w % scale]


def bicubic_pair(hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(hr_cropped, lr, upsampled)``: ``hr`` ``(..., H, W)`` mod-cropped to ``(H', W')``, its bicubic
    ``1/scale`` downscale ``(H'/s, W'/s)`` and that upscaled back to ``(H', W')`` (float, not clipped)."""
    hr = modcrop(hr, scale)
    if min(hr.shape[-2:]) < scale:
        raise InputError(f"image of {tuple(hr.shape[-2:])} pixels is too small for scale {scale}")
    lr = imresize(hr, 1.0 / scale)
    up = imresize(lr, size=tuple(hr.shape[-2:]))
    return hr, lr, up


def load_y_images(
    sources: Sequence[str | os.PathLike], *, min_size: int = 1
) -> tuple[list[torch.Tensor], list[str]]:
    """Y images ``(1, H, W)`` of named data sets or folders, dropping those smaller than ``min_size``.

    Returns the images and the names of the dropped files.
    """
    images: list[torch.Tensor] = []
    dropped: list[str] = []
    for src in sources:
        key = str(src)
        folder = dataset_dir(key) if key.lower() in {d.lower() for d in DATASETS} else Path(key)
        files = list_images(folder)
        if not files:
            raise InputError(f"training data {key!r}: no images in {str(folder)!r}")
        for f in files:
            y = to_y(read_image(f))
            if min(y.shape[-2:]) < min_size:
                dropped.append(f"{key}/{f.name}")
                continue
            images.append(y)
    if dropped:
        log.info("dropped %d images smaller than %d px: %s", len(dropped), min_size, dropped)
    return images, dropped


class SRPatchDataset(Dataset):
    """Multi-scale super-resolution training groups.

    Args:
        images: high-resolution Y images ``(1, H, W)`` (see :func:`load_y_images`).
        patch_size: side ``P`` of the square crops (N3NetSR needs at least 76).
        scales: scale factors; item ``i`` holds one crop for each.
        length: number of groups (items).
        seed: with :meth:`set_epoch`'s epoch and the index, fixes every item.

    ``dataset[i]`` is ``(inputs, targets)``, both float32 ``(S, 1, P, P)``: the bicubic-upsampled
    crop and the high-resolution crop, one per scale in the order of ``scales``. The degradation is
    computed once per image and scale, on the whole (mod-cropped) image, then cropped.
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor],
        patch_size: int,
        *,
        scales: Sequence[int] = SCALES,
        length: int,
        seed: int = 0,
        augment: bool = True,
    ) -> None:
        if not scales:
            raise InputError("SRPatchDataset: scales is empty; use e.g. 2,3,4")
        self.scales = tuple(check_scale(s, "scale") for s in scales)
        if int(length) != length or length < 1:
            raise InputError(f"SRPatchDataset: length={length!r} must be a positive integer")
        self.length = int(length)
        self.patch_size = int(patch_size)
        self._hr: list[list[torch.Tensor]] = []
        self._up: list[list[torch.Tensor]] = []
        self._crops: list[PatchDataset] = []
        n = len(self.scales)
        for s in self.scales:
            hrs, ups = [], []
            for im in progress(images, desc=f"bicubic x{s}", total=len(images)):
                hr, _, up = bicubic_pair(im.float(), s)
                hrs.append(hr.contiguous())
                ups.append(up.float().contiguous())
            self._hr.append(hrs)
            self._up.append(ups)
            # PatchDataset draws (image, top, left, transform); index i*S + j is scale j of item i
            self._crops.append(
                PatchDataset(hrs, patch_size, length=self.length * n, seed=seed, augment=augment)
            )

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (but again deterministic) set of crops for ``epoch``."""
        for c in self._crops:
            c.set_epoch(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} groups")
        index %= self.length
        n, p = len(self.scales), self.patch_size
        xs, ys = [], []
        for j in range(n):
            img, top, left, k = self._crops[j].params(index * n + j)
            box = (slice(None), slice(top, top + p), slice(left, left + p))
            xs.append(dihedral(self._up[j][img][box], k))
            ys.append(dihedral(self._hr[j][img][box], k))
        return torch.stack(xs).contiguous(), torch.stack(ys).contiguous()
