"""Torch datasets over image folders: whole images, and random augmented patches.

:class:`PatchDataset` is built for reproducible training: item ``i`` is a pure function of
``(seed, epoch, i)`` — which image, where the crop is, which of the 8 dihedral transforms — so a
resumed run, a different number of data-loader workers or another DDP rank asking for the same index
gets the same patch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from knnlab.data.datasets import _folder, load_images
from knnlab.data.images import list_images, read_image, to_channels
from knnlab.errors import InputError

__all__ = ["ImageFolderDataset", "PatchDataset", "dihedral"]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th of the 8 dihedral transforms of ``(..., H, W)``: rotate by ``90° · (k mod 4)``,
    then flip left-right when ``k >= 4``. ``k = 0`` is the identity."""
    if not 0 <= k < 8:
        raise InputError(f"dihedral: k={k} must be in 0..7")
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


class ImageFolderDataset(Dataset):
    """Whole images of a folder or a named data set, sorted by file name, as ``(C, H, W)`` float32.

    ``cache=True`` keeps each image in memory after its first read. ``return_path=True`` makes items
    ``(image, path)``.
    """

    def __init__(
        self,
        folder_or_name: str | os.PathLike,
        *,
        channels: int | None = None,
        cache: bool = True,
        return_path: bool = False,
    ) -> None:
        self.folder = _folder(folder_or_name)
        self.paths: list[Path] = list_images(self.folder)
        if not self.paths:
            raise InputError(f"no images (PNG, JPEG, BMP, TIFF) in {str(self.folder)!r}")
        self.channels = channels
        self.return_path = return_path
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, str]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        if self._cache is not None and index in self._cache:
            image = self._cache[index]
        else:
            image = read_image(self.paths[index], channels=self.channels)
            if self._cache is not None:
                self._cache[index] = image
        return (image, str(self.paths[index])) if self.return_path else image


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise InputError(f"patch_size={size!r} must be a positive integer or two of them")
    return int(size[0]), int(size[1])


class PatchDataset(Dataset):
    """Random ``patch_size`` crops of a set of images, with random flips and 90° rotations.

    Args:
        images_or_folder: a list of ``(C, H, W)`` tensors, a folder, or a data set name.
        patch_size: side of the square patch, or ``(h, w)``.
        length: number of items (patches per epoch).
        augment: apply one of the 8 dihedral transforms, uniformly at random.
        seed: with :meth:`set_epoch`'s epoch and the index, fixes every item.
        channels: convert the images to 1 or 3 channels (None: keep; all must agree).

    Images are loaded once and kept in memory. Each item picks an image with probability
    proportional to its number of possible crop positions (so every position of every image is
    equally likely), then a crop position uniformly, then a transform. Items are float32
    ``(C, h, w)`` (or ``(C, w, h)`` after a 90° rotation of a non-square patch, so use squares when
    batching).
    """

    def __init__(
        self,
        images_or_folder: Sequence[torch.Tensor] | str | os.PathLike,
        patch_size: int | Sequence[int],
        *,
        length: int,
        augment: bool = True,
        seed: int = 0,
        channels: int | None = None,
    ) -> None:
        if isinstance(images_or_folder, (str, os.PathLike)):
            images = load_images(images_or_folder, channels=channels)
        else:
            images = [to_channels(torch.as_tensor(im), channels) for im in images_or_folder]
        if not images:
            raise InputError("PatchDataset: no images given")
        self.patch = _pair(patch_size)
        if int(length) != length or length < 1:
            raise InputError(f"PatchDataset: length={length!r} must be a positive integer")
        ph, pw = self.patch
        counts = set()
        for i, im in enumerate(images):
            if im.ndim != 3:
                raise InputError(
                    f"PatchDataset: image {i} has shape {tuple(im.shape)}, not (C, H, W)"
                )
            counts.add(im.shape[0])
            if im.shape[1] < ph or im.shape[2] < pw:
                raise InputError(
                    f"PatchDataset: image {i} is {im.shape[1]}x{im.shape[2]}, smaller than "
                    f"patch_size {ph}x{pw}; use a smaller patch_size or drop that image"
                )
        if len(counts) > 1:
            raise InputError(
                f"PatchDataset: images have different channel counts {sorted(counts)}; pass channels=1 or 3"
            )
        self.images = [im.float().contiguous() for im in images]
        self.length = int(length)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        positions = np.array(
            [(im.shape[1] - ph + 1) * (im.shape[2] - pw + 1) for im in self.images],
            dtype=np.float64,
        )
        self._cum = np.cumsum(positions / positions.sum())
        self._cum[-1] = 1.0

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (but again deterministic) set of patches for ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def params(self, index: int) -> tuple[int, int, int, int]:
        """``(image_index, top, left, transform)`` of item ``index``: a pure function of
        ``(seed, epoch, index)`` through numpy's ``SeedSequence``."""
        if not -self.length <= index < self.length:
            raise IndexError(
                f"index {index} out of range for a PatchDataset of length {self.length}"
            )
        index %= self.length
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.seed, self.epoch, index]))
        )
        u = rng.random()
        img = min(int(np.searchsorted(self._cum, u, side="right")), len(self.images) - 1)
        _, h, w = self.images[img].shape
        top = int(rng.integers(0, h - self.patch[0] + 1))
        left = int(rng.integers(0, w - self.patch[1] + 1))
        k = int(rng.integers(0, 8)) if self.augment else 0
        return img, top, left, k

    def __getitem__(self, index: int) -> torch.Tensor:
        img, top, left, k = self.params(index)
        ph, pw = self.patch
        patch = self.images[img][:, top : top + ph, left : left + pw]
        return dihedral(patch, k).contiguous()
