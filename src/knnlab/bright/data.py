"""Image sets for the BRIGHT autoencoders, as float tensors ``(N, C, S, S)`` in [0, 1].

- ``MNIST``: the 60 000 training digits / the 10 000 test digits (held out), 28×28 gray.
- ``CelebA6000``: the manifest's ``train_dataset`` (4 800) / ``validation_dataset`` (600) faces,
  centre crop 178×178 then an antialiased MATLAB-style bicubic resize to ``size`` (64 for
  ``celeba64``), clipped to [0, 1].
- a folder of images: every image, centre-cropped to a square and resized the same way; the last
  10 % (by file name) are the held-out split.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from knnlab.data import dataset_dir, imresize, list_images, load_mnist, read_image
from knnlab.errors import DataNotFoundError, InputError
from knnlab.progress import progress

__all__ = ["ImageTensorDataset", "center_square", "load_image_set"]

log = logging.getLogger(__name__)

_SPLITS = ("train", "test")


class ImageTensorDataset(Dataset):
    """Map-style view of an image tensor: item ``i`` is ``images[i]``."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def center_square(img: torch.Tensor, crop: int | None, size: int) -> torch.Tensor:
    """``(C, H, W)`` → centre crop ``crop × crop`` (default: the shorter side) → ``(C, size, size)``."""
    _, h, w = img.shape
    c = min(h, w) if crop is None else min(crop, h, w)
    top, left = (h - c) // 2, (w - c) // 2
    img = img[:, top : top + c, left : left + c]
    if c != size:
        img = imresize(img.double(), size=(size, size)).float().clamp(0, 1)
    return img


def _celeba_files(split: str) -> list[Path]:
    root = dataset_dir("CelebA6000")
    manifest = root / "manifest.tsv"
    if not manifest.is_file():
        raise DataNotFoundError(f"{manifest} does not exist; is the CelebA6000 folder complete?")
    want = "train_dataset" if split == "train" else "validation_dataset"
    with manifest.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [root / "images" / r["file"] for r in rows if r["split"] == want]


def load_image_set(
    data: str, split: str = "train", *, size: int, channels: int, limit: int | None = None
) -> torch.Tensor:
    """Images ``(N, channels, size, size)`` in [0, 1] of ``data`` (MNIST, CelebA6000 or a folder);
    ``split`` is ``"train"`` or ``"test"`` (the held-out part); ``limit`` keeps the first N."""
    if split not in _SPLITS:
        raise InputError(f"split={split!r}: choose 'train' or 'test'")
    if data.lower() == "mnist":
        if size != 28 or channels != 1:
            raise InputError(
                f"--data MNIST gives 28×28 gray images; this model wants {channels}×{size}×{size}"
            )
        x, _ = load_mnist(split)
        x = x[:limit] if limit else x
        return (x.float() / 255.0).unsqueeze(1)
    if data.lower() == "celeba6000":
        files, crop = _celeba_files(split), 178
    else:
        folder = Path(data)
        if not folder.is_dir():
            raise DataNotFoundError(
                f"--data {data!r}: not MNIST, CelebA6000 or an existing folder of images"
            )
        all_files = list_images(folder)
        if len(all_files) < 2:
            raise InputError(f"--data {data!r}: needs at least 2 images, found {len(all_files)}")
        cut = max(1, round(0.9 * len(all_files)))
        files, crop = (all_files[:cut] if split == "train" else all_files[cut:]), None
    files = files[:limit] if limit else files
    out = torch.empty(len(files), channels, size, size)
    for i, f in enumerate(progress(files, desc=f"load {Path(data).name} {split}")):
        out[i] = center_square(read_image(f, channels=channels), crop, size)
    return out
