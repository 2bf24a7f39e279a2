"""Image sources for feature extraction, read in batches so that no set is ever held whole.

A source is an image folder, a named data set (:data:`knnlab.data.DATASETS`; ``MNIST`` is its
60 000 training digits, ``MNIST:test`` the 10 000 test digits) or nothing else: ``.npz`` feature
files are handled by the command before any image is read. Files are decoded with
:func:`knnlab.data.read_image` (its checks and one-line errors) and quantised to 8 bits, which is
how clean-fid reads them, before the resize of :mod:`knnlab.metrics.features.resize`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knnlab.errors import InputError

__all__ = ["ImageSource", "open_source", "read_uint8"]


def read_uint8(path: str | os.PathLike, channels: int) -> np.ndarray:
    """An image file as ``uint8 (H, W, channels)`` (8-bit values exact; 16-bit rounded to 8)."""
    from knnlab.data import read_image

    x = read_image(path, channels=channels).numpy()  # (C, H, W) float32 in [0, 1]
    return np.rint(x.transpose(1, 2, 0) * 255.0).astype(np.uint8)


@dataclass
class ImageSource:
    """``len(source)`` images, read ``batch`` at a time as lists of ``uint8 (H, W, C)`` arrays.

    ``name``: what the user gave (for messages and cache names); ``fingerprint``: a hash of what
    identifies the content (resolved path, file names, sizes and modification times).
    """

    name: str
    files: list[Path] | None = None  # image files, or None for an in-memory digit array
    digits: np.ndarray | None = None  # uint8 (N, 28, 28) (MNIST) when files is None
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.files) if self.files is not None else len(self.digits)  # type: ignore[arg-type]

    def batches(self, batch: int, channels: int) -> Iterator[list[np.ndarray]]:
        n = len(self)
        for i in range(0, n, batch):
            if self.files is not None:
                yield [read_uint8(f, channels) for f in self.files[i : i + batch]]
            else:
                assert self.digits is not None
                d = self.digits[i : i + batch, :, :, None]  # (b, 28, 28, 1)
                yield [np.repeat(x, channels, axis=2) if channels != 1 else x for x in d]


def _fingerprint(parts: list[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _folder_source(name: str, folder: Path, limit: int | None) -> ImageSource:
    from knnlab.data import list_images

    files = list_images(folder)
    if not files:
        raise InputError(
            f"{name}: no images (PNG, JPEG, BMP, TIFF) in {str(folder)!r}; pass a folder of "
            "images, a named data set or a .npz feature file"
        )
    files = files[:limit] if limit is not None else files
    parts = [str(folder.resolve())]
    for f in files:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return ImageSource(name, files=files, fingerprint=_fingerprint(parts))


def open_source(spec: str, *, limit: int | None = None) -> ImageSource:
    """The images named by ``spec``: a folder, a data set name, or ``MNIST`` / ``MNIST:test``;
    ``limit`` keeps the first ``limit`` images (sorted by file name)."""
    from knnlab.data import DATASETS, dataset_dir, load_mnist

    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: must be at least 1")
    if spec.lower() in ("mnist", "mnist:train", "mnist:test"):
        split = "test" if spec.lower().endswith(":test") else "train"
        x, _ = load_mnist(split)
        digits = x.numpy()[:limit] if limit is not None else x.numpy()
        return ImageSource(spec, digits=digits, fingerprint=f"mnist-{split}")
    path = Path(spec).expanduser()
    if not path.exists() and spec.lower() in {d.lower() for d in DATASETS}:
        folder = dataset_dir(spec)
        if (folder / "images").is_dir():  # CelebA6000 keeps its images in images/
            folder = folder / "images"
        return _folder_source(spec, folder, limit)
    if not path.exists():
        raise InputError(
            f"{spec!r}: no such folder, .npz file or data set; pass an image folder, a .npz "
            f"feature file, or one of {', '.join(DATASETS)}, MNIST:test"
        )
    if not path.is_dir():
        raise InputError(f"{spec!r} is a file; pass a folder of images or a .npz feature file")
    return _folder_source(spec, path, limit)
