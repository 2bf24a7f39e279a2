from __future__ import annotations

import pytest
import torch

from knnlab.bright.data import center_square, load_image_set
from knnlab.data import write_image
from knnlab.errors import DataNotFoundError, InputError


def test_center_square_crops_the_middle() -> None:
    img = torch.arange(3 * 7 * 5, dtype=torch.float32).reshape(3, 7, 5) / 105
    out = center_square(img, None, 5)
    torch.testing.assert_close(out, img[:, 1:6, :])
    out = center_square(img, 3, 3)
    torch.testing.assert_close(out, img[:, 2:5, 1:4])


def test_center_square_resize_keeps_constants_and_averages() -> None:
    img = torch.full((3, 60, 80), 0.25)
    torch.testing.assert_close(center_square(img, None, 20), torch.full((3, 20, 20), 0.25))
    # a 2×2 checkerboard of 10×10 blocks shrinks to 2×2 block means (antialiased bicubic)
    board = torch.zeros(1, 20, 20)
    board[:, :10, :10] = board[:, 10:, 10:] = 1.0
    out = center_square(board, None, 2)
    assert out[0, 0, 0] > 0.8 and out[0, 0, 1] < 0.2 and 0 <= out.min() and out.max() <= 1


def test_folder_splits_and_errors(tmp_path) -> None:
    g = torch.Generator().manual_seed(1)
    for i in range(10):
        write_image(tmp_path / f"{i}.png", torch.rand(3, 12, 16, generator=g))
    train = load_image_set(str(tmp_path), "train", size=8, channels=3)
    test = load_image_set(str(tmp_path), "test", size=8, channels=3)
    assert train.shape == (9, 3, 8, 8) and test.shape == (1, 3, 8, 8)
    with pytest.raises(InputError, match="split="):
        load_image_set(str(tmp_path), "val", size=8, channels=3)
    with pytest.raises(DataNotFoundError, match="not MNIST"):
        load_image_set(str(tmp_path / "missing"), size=8, channels=3)


def test_mnist_shape(shared_datasets) -> None:
    x = load_image_set("MNIST", "test", size=28, channels=1, limit=5)
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(InputError, match="28×28 gray"):
        load_image_set("MNIST", "test", size=32, channels=1)
