"""The real images a generator is compared with: the data it was trained on, by name.

The hubness experiment measures generated images against a *reference* set (FID, precision,
recall, density, coverage) and checks novelty against the *training* set. Both depend on what the
generator learned, so each real set is registered with its image shape, loaders for both roles and
the feature network that suits it:

============ ============ ======================================================= ===============
name         shape        reference / training images                              features (auto)
============ ============ ======================================================= ===============
``mnist``    1 × 28 × 28  MNIST test split (10 000) / train split (60 000)         ``mnist``
``celeba64`` 3 × 64 × 64  CelebA6000, all 6 000 faces for both (centre crop       ``faces``
                          178 × 178, MATLAB-style antialiased bicubic to 64 × 64)
============ ============ ======================================================= ===============

A new domain plugs in with :func:`register_real_images`; nothing in the experiment names a data set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from knnlab.errors import InputError

__all__ = [
    "REAL_IMAGES",
    "RealImages",
    "celeba64_images",
    "get_real_images",
    "match_real_images",
    "register_real_images",
]

#: loader signature: (n or None for all, seed) -> images (N, C, H, W) float32 in [0, 1]
Loader = Callable[[int | None, int], torch.Tensor]


@dataclass(frozen=True)
class RealImages:
    """One real image set: what it is, its image shape and how to load its two roles."""

    name: str  # registry key, e.g. "mnist"
    shape: tuple[int, int, int]  # (C, H, W) of every image
    reference: Loader  # images the metrics compare with
    training: Loader  # images novelty is checked against (what the generator was trained on)
    reference_label: str  # e.g. "MNIST test images"
    training_label: str  # e.g. "MNIST training images"
    features: str  # feature network used when --features is "auto"
    size_reference: int  # how many reference images exist
    size_training: int  # how many training images exist


REAL_IMAGES: dict[str, RealImages] = {}


def register_real_images(entry: RealImages) -> RealImages:
    """Add (or replace) a real image set under ``entry.name``."""
    REAL_IMAGES[entry.name] = entry
    return entry


def get_real_images(name: str) -> RealImages:
    """The registered set ``name``, or a one-line error listing the names."""
    if name not in REAL_IMAGES:
        raise InputError(f"real image set {name!r}: choose one of {sorted(REAL_IMAGES)}")
    return REAL_IMAGES[name]


def match_real_images(shape: tuple[int, ...]) -> RealImages | None:
    """The one registered set whose images have ``shape`` (C, H, W), or None if none or several."""
    found = [r for r in REAL_IMAGES.values() if tuple(r.shape) == tuple(shape)]
    return found[0] if len(found) == 1 else None


def _subsample(total: int, n: int | None, seed: int) -> np.ndarray:
    """Indices of ``n`` of ``total`` items (all when ``n`` is None or >= total), sorted."""
    if n is None or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


# --------------------------------------------------------------------------------------------
# MNIST


def _mnist(split: str) -> Loader:
    def load(n: int | None, seed: int) -> torch.Tensor:
        from knnlab.data import load_mnist

        x, _ = load_mnist(split)  # (N, 28, 28) uint8
        idx = torch.from_numpy(_subsample(len(x), n, seed))
        return x[idx].float().div(255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]

    return load


register_real_images(
    RealImages(
        name="mnist",
        shape=(1, 28, 28),
        reference=_mnist("test"),
        training=_mnist("train"),
        reference_label="MNIST test images",
        training_label="MNIST training images",
        features="mnist",
        size_reference=10_000,
        size_training=60_000,
    )
)


# --------------------------------------------------------------------------------------------
# CelebA6000 faces at 64 × 64

CELEBA_CROP = 178  # side of the centre square cut from the 178 × 218 aligned photos
CELEBA_SIZE = 64


def celeba64_images(
    n: int | None = None, seed: int = 0, *, batch_size: int = 256, root: str | None = None
) -> torch.Tensor:
    """CelebA6000 faces ``(N, 3, 64, 64)`` float32 in [0, 1], sorted by file name.

    Each aligned 178 × 218 photo is cut to its centre 178 × 178 square and shrunk to 64 × 64 with
    PIL's antialiased bicubic, as the face GAN's training images. ``n`` images are drawn without
    replacement with ``seed`` (all 6 000 when ``n`` is None); only those are decoded.
    """
    from knnlab.data import dataset_dir, list_images

    folder = dataset_dir("CelebA6000", root) / "images"
    files = list_images(folder)
    if not files:
        raise InputError(f"no images in {str(folder)!r}; is CelebA6000 complete?")
    idx = _subsample(len(files), n, seed)
    return _celeba64_files(tuple(str(files[i]) for i in idx), batch_size)


@functools.lru_cache(maxsize=2)
def _celeba64_files(files: tuple[str, ...], batch_size: int) -> torch.Tensor:
    """The faces exactly as the face GAN was trained on them (one transform for both:
    :func:`knnlab.hubness.train_gan.celeba64_transform`)."""
    from PIL import Image, UnidentifiedImageError

    from knnlab.hubness.train_gan import celeba64_transform
    from knnlab.progress import progress

    out = torch.empty(len(files), 3, CELEBA_SIZE, CELEBA_SIZE)
    for s in progress(range(0, len(files), batch_size), desc="CelebA6000 64x64", unit="batch"):
        for i, f in enumerate(files[s : s + batch_size]):
            try:
                with Image.open(f) as im:
                    u8 = celeba64_transform(im, CELEBA_SIZE)
            except (OSError, UnidentifiedImageError) as e:
                raise InputError(f"{f}: not a readable image ({e})") from e
            out[s + i] = torch.from_numpy(u8).float() / 255.0
    return out


register_real_images(
    RealImages(
        name="celeba64",
        shape=(3, CELEBA_SIZE, CELEBA_SIZE),
        reference=lambda n, seed: celeba64_images(n, seed),
        training=lambda n, seed: celeba64_images(n, seed),
        reference_label="CelebA6000 faces (64x64)",
        training_label="CelebA6000 faces (64x64)",
        features="faces",
        size_reference=6_000,
        size_training=6_000,
    )
)
