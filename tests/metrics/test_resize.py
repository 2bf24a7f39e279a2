"""Resizing to a feature network's input: clean-fid's antialiased PIL bicubic on 8-bit pixels, and
pytorch-fid's legacy bilinear, each against an implementation written here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from knnlab.errors import InputError
from knnlab.metrics.features.resize import (
    center_crop_square,
    resize_clean,
    resize_legacy,
    to_input,
)


def _image(h: int, w: int, seed: int = 0, noise: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(smooth * 0.6 + rng.integers(0, noise + 1, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [299, 64, 17])
def test_clean_resize_is_pil_bicubic_on_uint8(size: int) -> None:
    # within 40..215 so that no filter overshoot reaches the clip (Pillow's 8-bit path clips and
    # rounds between its horizontal and vertical passes, clean-fid's float path does not)
    img = 40 + (_image(90, 120, noise=40).astype(np.float64) * (135 / 255)).astype(np.uint8)
    ours = resize_clean(img, size).numpy().transpose(1, 2, 0) * 255.0  # (size, size, 3)
    # Pillow's own 8-bit RGB bicubic (fixed-point arithmetic, rounded to integers)
    pil = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))
    assert ours.shape == (size, size, 3)
    diff = np.abs(ours - pil.astype(np.float64))
    # Pillow rounds to integers after each of its two passes: at most ~1 level apart
    assert diff.max() <= 1.25 and diff.mean() < 0.35
    # not re-quantised (clean-fid keeps the float result)
    assert not np.allclose(ours, np.rint(ours))


def test_clean_resize_is_antialiased_legacy_is_not() -> None:
    # a one-pixel checkerboard averages to mid-grey only when the filter widens on downsampling
    board = ((np.indices((48, 48)).sum(0) % 2) * 255).astype(np.uint8)
    img = np.repeat(board[:, :, None], 3, axis=2)
    clean = resize_clean(img, 16).numpy()
    legacy = resize_legacy(img, 16).numpy()
    assert np.abs(clean - 0.5).max() < 0.05
    assert np.abs(legacy - 0.5).max() > 0.4  # 3x bilinear samples single pixels: 0 or 1


def _bilinear_half_pixel(img: np.ndarray, size: int) -> np.ndarray:
    """A slow bilinear resize with half-pixel centres and edge clamping (align_corners=False)."""
    h, w, c = img.shape
    x = img.astype(np.float64) / 255.0
    out = np.zeros((size, size, c))
    for i in range(size):
        sy = max((i + 0.5) * h / size - 0.5, 0.0)
        y0 = min(int(np.floor(sy)), h - 1)
        y1, wy = min(y0 + 1, h - 1), sy - y0
        for j in range(size):
            sx = max((j + 0.5) * w / size - 0.5, 0.0)
            x0 = min(int(np.floor(sx)), w - 1)
            x1, wx = min(x0 + 1, w - 1), sx - x0
            top = (1 - wx) * x[y0, x0] + wx * x[y0, x1]
            bot = (1 - wx) * x[y1, x0] + wx * x[y1, x1]
            out[i, j] = (1 - wy) * top + wy * bot
    return out


@pytest.mark.parametrize("size", [24, 50])
def test_legacy_resize_is_half_pixel_bilinear(size: int) -> None:
    img = _image(37, 41, seed=1)
    ours = resize_legacy(img, size).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(ours, _bilinear_half_pixel(img, size), atol=1e-6)


def test_same_size_is_exact_and_center_crop() -> None:
    img = _image(64, 64)
    np.testing.assert_array_equal(resize_clean(img, 64).numpy() * 255.0, img.transpose(2, 0, 1))
    tall = _image(218, 178)
    crop = center_crop_square(tall)
    np.testing.assert_array_equal(crop, tall[20:198])  # CelebA's aligned faces -> 178x178
    x = to_input(tall, 64, "clean", center_crop=True)
    assert tuple(x.shape) == (3, 64, 64)
    with pytest.raises(InputError, match="resize"):
        to_input(tall, 64, "nearest")
