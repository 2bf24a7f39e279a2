"""Degradations: Gaussian noise and RGB → Y (imresize has its own test file)."""

from __future__ import annotations

import pytest
import torch

from knnlab.data import add_gaussian_noise, rgb_to_y
from knnlab.errors import InputError


def test_noise_is_sigma_over_255_times_generator_normals():
    x = torch.rand(2, 1, 64, 64)
    out = add_gaussian_noise(x, 25, generator=torch.Generator().manual_seed(3))
    expect = x + 25 / 255 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, expect)
    assert abs(((out - x) * 255).std().item() - 25) < 0.5


def test_noise_is_reproducible_and_clippable():
    x = torch.rand(1, 32, 32)
    a = add_gaussian_noise(x, 50, generator=torch.Generator().manual_seed(0))
    b = add_gaussian_noise(x, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.min() < 0 or a.max() > 1
    c = add_gaussian_noise(x, 50, generator=torch.Generator().manual_seed(0), clip=True)
    assert c.min() >= 0 and c.max() <= 1
    assert torch.equal(add_gaussian_noise(x, 0), x)


def test_noise_errors():
    with pytest.raises(InputError, match="sigma"):
        add_gaussian_noise(torch.rand(1, 4, 4), -1)
    with pytest.raises(InputError, match="sigma"):
        add_gaussian_noise(torch.rand(1, 4, 4), float("nan"))
    with pytest.raises(InputError, match="floating-point"):
        add_gaussian_noise(torch.zeros(1, 4, 4, dtype=torch.uint8), 5)


def test_rgb_to_y():
    x = torch.rand(2, 3, 5, 6)
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 5, 6)
    expect = (16 + 65.481 * x[:, 0] + 128.553 * x[:, 1] + 24.966 * x[:, 2]) / 255
    torch.testing.assert_close(y[:, 0], expect)
    with pytest.raises(InputError, match="RGB"):
        rgb_to_y(torch.rand(1, 5, 5))
