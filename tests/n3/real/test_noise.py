"""The released real-noise recipe: level sampling, raw-like transform, gray weights, input maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import kstest

from knnlab.errors import InputError
from knnlab.n3.real.noise import (
    noise_level_input,
    raw_like,
    real_noise_batch,
    sample_noise_levels,
    to_gray,
)


def test_noise_levels_follow_the_released_distribution() -> None:
    a, b = sample_noise_levels(20_000, generator=torch.Generator().manual_seed(0))
    la, lb = np.log10(a.numpy()), np.log10(b.numpy())
    # log10 a ~ U(-4, -1); log10 b - log10 a + 2.3 ~ U(-1.3, 1.3) (Kolmogorov–Smirnov, p > 1e-3)
    assert kstest((la + 4.0) / 3.0, "uniform").pvalue > 1e-3
    assert kstest((lb - la + 2.3 + 1.3) / 2.6, "uniform").pvalue > 1e-3
    assert la.min() >= -4 and la.max() <= -1


def test_gray_matches_pil() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (3, 40, 50), dtype=np.uint8)
    ref = np.asarray(
        Image.fromarray(rgb.transpose(1, 2, 0)).convert("L", (0.2989, 0.5870, 0.1140, 0))
    ).astype(np.float64)
    ours = to_gray(torch.from_numpy(rgb).double()[None])[0, 0].numpy()
    assert np.abs(ours - ref).max() <= 0.5 + 1e-6  # PIL rounds to integers


def test_raw_like_is_a_power_and_a_scale_per_crop() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(2)).double() * 0.9 + 0.05
    y = raw_like(x, generator=g)
    for i in range(x.shape[0]):
        lx, ly = x[i].flatten().log(), y[i].flatten().log()
        # log y = log f_c + f_e log x exactly: fit the line and check the released ranges
        fe, lfc = np.polyfit(lx.numpy(), ly.numpy(), 1)
        assert 1.25 - 1e-9 <= fe <= 10 + 1e-9
        assert 0.25 - 1e-9 <= np.exp(lfc) <= 1 + 1e-9
        assert np.allclose(ly.numpy(), lfc + fe * lx.numpy(), atol=1e-8)


def test_batch_is_deterministic_for_a_seed_and_shaped() -> None:
    crops = torch.rand(4, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    i1, c1 = real_noise_batch(crops, generator=torch.Generator().manual_seed(7))
    i2, c2 = real_noise_batch(crops, generator=torch.Generator().manual_seed(7))
    assert i1.shape == (4, 3, 80, 80) and c1.shape == (4, 1, 80, 80)
    assert torch.equal(i1, i2) and torch.equal(c1, c2)
    # the maps are constant per image and the noisy image is clipped
    assert bool((i1[:, 1:].flatten(2).std(2) == 0).all())
    assert float(i1[:, 0].min()) >= 0 and float(i1[:, 0].max()) <= 1


def test_noise_level_input() -> None:
    y = torch.rand(2, 1, 5, 6)
    x = noise_level_input(y, torch.tensor([0.1, 0.2]), 0.5)
    assert torch.equal(x[:, 0:1], y)
    assert torch.equal(x[1, 1], torch.full((5, 6), 0.2))
    assert torch.equal(x[0, 2], torch.full((5, 6), 0.5))
    with pytest.raises(InputError, match="expected"):
        noise_level_input(torch.rand(2, 3, 5, 6), 0.1, 0.1)
    with pytest.raises(InputError, match="B=2"):
        noise_level_input(y, torch.tensor([0.1, 0.2, 0.3]), 0.1)
