"""Named data sets under the data root (``$KNNLAB_DATA``, else ``../shared/datasets``).

=========  ==============================================================  =====================
name       content                                                         layout
=========  ==============================================================  =====================
Train400   400 gray 180×180 BSDS crops, Gaussian-denoising training set    ``Train400/*.png``
Set12      12 classic gray test images                                     ``Set12/*.png``
BSD68      68 gray BSDS500 validation images                               ``BSD68/*.png``
Urban100   100 urban images (gray in the shared copy)                      ``Urban100/*.png``
Set5       5 RGB super-resolution test images                              ``Set5/*.bmp``
Set14      14 super-resolution test images                                 ``Set14/*.bmp``
MNIST      70 000 28×28 digits                                             ``MNIST/mnist.npz``
SelfExSR   Set5/Set14 super-resolution pairs (HR + LR at ×2, ×3, ×4)       ``SelfExSR/Set5/image_SRF_2/*``
T91        91 RGB super-resolution training images (Yang et al. 2010)      ``T91/*.bmp``
B100       100 RGB BSD100 super-resolution test images                     ``B100/*.png``
CelebA6000 6 000 aligned CelebA faces, 200 identities × 30                 ``CelebA6000/images/*.jpg``
PolyU      100 real noisy sRGB crops with ground truth (5 cameras)         ``PolyU/*_{real,mean}.JPG``
CC15       15 real noisy sRGB crops with ground truth (Nam et al. 2016)    ``CC15/*_{real,mean}.png``
TwoView/reichstag   10 photos, intrinsics, poses, 45 pairs                 ``TwoView/reichstag/``
TwoView/lund_door   12 photos, intrinsics, poses, 66 pairs                 ``TwoView/lund_door/``
=========  ==============================================================  =====================

A name may hold a slash (``TwoView/reichstag``): it is the data set's folder under the data root.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from knnlab.data.images import list_images, read_image
from knnlab.errors import DataNotFoundError, InputError
from knnlab.paths import DATA_ENV, data_root, download_root

__all__ = ["DATASETS", "dataset_dir", "load_images", "load_mnist", "resolve_name"]

DATASETS: tuple[str, ...] = (
    "Train400",
    "Set12",
    "BSD68",
    "Urban100",
    "Set5",
    "Set14",
    "MNIST",
    "SelfExSR",
    "T91",
    "B100",
    "CelebA6000",
    "PolyU",
    "CC15",
    "TwoView/reichstag",
    "TwoView/lund_door",
)


def resolve_name(name: str) -> str:
    """The canonical spelling of a data set name (case-insensitive), or an error listing the names."""
    for known in DATASETS:
        if name.lower() == known.lower():
            return known
    raise InputError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")


def dataset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of a named data set under ``root``.

    Default: :func:`knnlab.paths.data_root`, then the download folder of ``knnlab data download``
    (:func:`knnlab.paths.download_root`).
    """
    canonical = resolve_name(name)
    if root is not None:
        path = Path(root) / canonical
    else:
        downloaded = download_root(create=False) / canonical
        base = data_root(required=not downloaded.is_dir())
        path = base / canonical if base is not None else downloaded
        if not path.is_dir() and downloaded.is_dir():
            path = downloaded
    if not path.is_dir():
        raise DataNotFoundError(
            f"data set {canonical} not found at {str(path)!r}; set ${DATA_ENV} to the folder that "
            f"holds {canonical}/, or run `knnlab data download {canonical}`"
        )
    return path


def load_images(
    name_or_folder: str | os.PathLike, channels: int | None = None
) -> list[torch.Tensor]:
    """All images of a named data set or a folder, sorted by file name, each ``(C, H, W)`` in [0, 1].

    A ``str`` that is a data set name (case-insensitive) means that data set; anything else (or a
    :class:`~pathlib.Path`) is a folder.
    """
    folder = _folder(name_or_folder)
    files = list_images(folder)
    if not files:
        raise InputError(f"no images (PNG, JPEG, BMP, TIFF) in {str(folder)!r}")
    return [read_image(f, channels=channels) for f in files]


def _folder(name_or_folder: str | os.PathLike) -> Path:
    if isinstance(name_or_folder, str) and name_or_folder.lower() in {d.lower() for d in DATASETS}:
        return dataset_dir(name_or_folder)
    return Path(name_or_folder)


def load_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from ``MNIST/mnist.npz``: ``images`` uint8 ``(N, 28, 28)`` (white digits on black) and
    ``labels`` int64 ``(N,)``. ``split``: ``"train"`` (60 000) or ``"test"`` (10 000)."""
    if split not in ("train", "test"):
        raise InputError(f"split={split!r}: choose 'train' or 'test'")
    path = dataset_dir("MNIST") / "mnist.npz"
    if not path.is_file():
        raise DataNotFoundError(
            f"{str(path)!r} does not exist; run `knnlab data download MNIST` or set ${DATA_ENV}"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz[f"x_{split}"], npz[f"y_{split}"]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise InputError(
            f"{str(path)!r} is not a readable MNIST archive with keys x_{split}, y_{split} ({e})"
        ) from e
    if x.ndim != 3 or x.shape[0] != y.shape[0]:
        raise InputError(f"{str(path)!r}: x_{split} has shape {x.shape}, y_{split} {y.shape}")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)), torch.from_numpy(
        np.asarray(y, dtype=np.int64)
    )
