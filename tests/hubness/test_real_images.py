"""Real image sets by name: MNIST against the archive read directly, CelebA6000 at 64x64 against an
independent PIL crop-and-resize, shape matching and the registry's errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from knnlab.errors import InputError
from knnlab.hubness.real_images import (
    REAL_IMAGES,
    RealImages,
    celeba64_images,
    get_real_images,
    match_real_images,
    register_real_images,
)


def test_mnist_reference_is_the_test_split_subsampled_without_replacement(
    shared_datasets,
) -> None:
    with np.load(shared_datasets / "MNIST" / "mnist.npz") as npz:
        x_test = npz["x_test"]
    mnist = get_real_images("mnist")
    got = mnist.reference(50, 3)
    assert got.shape == (50, 1, 28, 28) and got.dtype == torch.float32
    idx = np.sort(np.random.default_rng(3).choice(len(x_test), 50, replace=False))
    np.testing.assert_array_equal(got[:, 0].numpy(), x_test[idx].astype(np.float32) / 255.0)
    assert len(mnist.reference(None, 0)) == mnist.size_reference == len(x_test)
    assert len(mnist.reference(10**6, 0)) == len(x_test)  # capped at the set's size


def test_celeba64_matches_an_independent_pil_centre_crop_and_resize(shared_datasets) -> None:
    files = sorted((shared_datasets / "CelebA6000" / "images").glob("*.jpg"))
    got = celeba64_images(4, seed=1)
    assert got.shape == (4, 3, 64, 64) and 0.0 <= float(got.min()) and float(got.max()) <= 1.0
    idx = np.sort(np.random.default_rng(1).choice(len(files), 4, replace=False))
    for g, i in zip(got, idx):
        im = Image.open(files[i]).convert("RGB")
        w, h = im.size
        assert (w, h) == (178, 218)
        top = (h - 178) // 2
        ref = np.asarray(im.crop((0, top, 178, top + 178)).resize((64, 64), Image.BICUBIC))
        diff = np.abs(g.permute(1, 2, 0).numpy() * 255.0 - ref.astype(np.float64))
        # PIL's antialiased bicubic (a = -0.5) and MATLAB's differ only in rounding and borders
        assert diff.mean() < 0.6 and np.percentile(diff, 99) < 3.0  # nearest: mean 2.4-5.1


def test_shape_matching_and_registry() -> None:
    assert match_real_images((1, 28, 28)) is REAL_IMAGES["mnist"]
    assert match_real_images((3, 64, 64)) is REAL_IMAGES["celeba64"]
    assert match_real_images((3, 32, 32)) is None
    with pytest.raises(InputError, match=r"real image set 'cifar'.*celeba64.*mnist"):
        get_real_images("cifar")
    toy = RealImages(
        name="toy-test",
        shape=(1, 28, 28),
        reference=lambda n, seed: torch.zeros(n or 5, 1, 28, 28),
        training=lambda n, seed: torch.zeros(n or 5, 1, 28, 28),
        reference_label="zeros",
        training_label="zeros",
        features="mnist",
        size_reference=5,
        size_training=5,
    )
    try:
        register_real_images(toy)
        assert get_real_images("toy-test") is toy
        assert match_real_images((1, 28, 28)) is None  # two sets of that shape: ambiguous
    finally:
        REAL_IMAGES.pop("toy-test")
