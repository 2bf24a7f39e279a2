"""Real-noise evaluation: pairs, subsets, crops, PSNR/SSIM against scikit-image, the result cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from knnlab.data import add_poisson_gaussian_noise, read_image, write_image
from knnlab.errors import InputError
from knnlab.n3.evaluate import noise_seed
from knnlab.n3.real.evaluate import centre_crop, evaluate_real, evenly_spaced, load_pairs


def test_evenly_spaced() -> None:
    assert evenly_spaced(100, 4) == [0, 33, 66, 99]
    assert evenly_spaced(5, None) == [0, 1, 2, 3, 4]
    assert evenly_spaced(3, 10) == [0, 1, 2]
    with pytest.raises(InputError, match="--limit 0"):
        evenly_spaced(5, 0)


@pytest.fixture
def pairs_folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        clean = torch.rand(3, 40, 48, generator=g)
        noisy = (clean + 0.05 * torch.randn(3, 40, 48, generator=g)).clamp(0, 1)
        write_image(tmp_path / f"im{i}_mean.png", clean)
        write_image(tmp_path / f"im{i}_real.png", noisy)
    return tmp_path


def test_noisy_row_matches_skimage(pairs_folder) -> None:
    r = evaluate_real(["noisy"], pairs_folder, limit=2, crop=32)
    assert r["images_used"] == ["im0.png", "im2.png"]
    for row in r["results"][0]["images"]:
        stem = row["image"][:-4]
        x = (
            centre_crop(read_image(pairs_folder / f"{stem}_real.png"), 32)
            .numpy()
            .astype(np.float64)
        )
        y = (
            centre_crop(read_image(pairs_folder / f"{stem}_mean.png"), 32)
            .numpy()
            .astype(np.float64)
        )
        assert x.shape == (3, 32, 32)
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(y, x, data_range=1), abs=1e-6)
        ref = structural_similarity(y, x, data_range=1, channel_axis=0, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)  # fmt: skip
        assert row["ssim"] == pytest.approx(ref, abs=1e-6)


def test_synthetic_noise_is_the_seeded_poisson_gaussian_draw(tmp_path) -> None:
    clean = torch.rand(1, 30, 30, generator=torch.Generator().manual_seed(1))
    write_image(tmp_path / "a.png", clean)
    c = read_image(tmp_path / "a.png", channels=1)
    r = evaluate_real(["noisy"], tmp_path, nlf=(0.01, 1e-4), seed=3)
    noisy = add_poisson_gaussian_noise(
        c, 0.01, 1e-4, generator=torch.Generator().manual_seed(noise_seed("a.png", 3))
    )
    ref = peak_signal_noise_ratio(
        c.numpy().astype(np.float64), noisy.numpy().astype(np.float64), data_range=1
    )
    assert r["results"][0]["psnr"] == pytest.approx(ref, abs=1e-6)
    assert r["protocol"] == "poisson-gaussian-gray-a0.01-b0.0001-seed3-clipped"


def test_missing_ground_truth(tmp_path) -> None:
    write_image(tmp_path / "x_real.png", torch.rand(3, 20, 20))
    with pytest.raises(InputError, match=r"x_mean\.png is missing"):
        load_pairs(tmp_path)


def test_cache_is_reused_and_keyed(pairs_folder, tmp_path, monkeypatch) -> None:
    import knnlab.n3.real.evaluate as ev
    from knnlab.n3.real.experiment import evaluate_cached

    spec = {"dataset": str(pairs_folder), "limit": None, "crop": None}
    first = evaluate_cached("noisy", spec, tmp_path / "cache", oracle=False, device="cpu")

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(ev, "evaluate_real", boom)
    assert evaluate_cached("noisy", spec, tmp_path / "cache", oracle=False, device="cpu") == first
    with pytest.raises(AssertionError, match="recomputed"):  # another protocol: not reused
        evaluate_cached(
            "noisy", {**spec, "crop": 32}, tmp_path / "cache", oracle=False, device="cpu"
        )
