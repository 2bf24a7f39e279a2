import itertools

import pytest
import torch

from knnlab.errors import DataNotFoundError, InputError
from knnlab.n3.denoise import Denoiser, denoise_tiled, load_denoiser, load_model, tile_starts
from knnlab.n3.dncnn import DnCNN


def test_tile_starts_cover_and_stay_inside():
    assert tile_starts(100, 128, 32) == [0]
    for size, tile, overlap in [(300, 128, 32), (129, 128, 16), (1000, 256, 64)]:
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] == size - tile
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    with pytest.raises(InputError):
        tile_starts(300, 32, 32)


def test_tiled_equals_untiled_for_a_cnn_whose_field_fits_the_margin():
    torch.manual_seed(0)
    net = DnCNN(depth=5, features=8).eval()  # receptive radius 5
    x = torch.rand(2, 1, 150, 133)
    with torch.no_grad():
        full = net(x)
        tiled = denoise_tiled(net, x, tile=64, overlap=24, margin=6)
    torch.testing.assert_close(tiled, full, atol=1e-5, rtol=0)
    # no tiling when the image fits
    torch.testing.assert_close(denoise_tiled(net, x, tile=200), full)


def test_tiling_arguments_are_checked():
    with pytest.raises(InputError, match="margin"):
        denoise_tiled(lambda t: t, torch.rand(1, 1, 100, 100), tile=50, overlap=10, margin=6)


def test_rgb_is_denoised_channel_by_channel():
    torch.manual_seed(0)
    net = DnCNN(depth=3, features=4).eval()
    den = Denoiser("t", 25, net, tile=None)
    x = torch.rand(3, 40, 30)
    out = den(x)
    assert out.shape == x.shape
    with torch.no_grad():
        for c in range(3):
            torch.testing.assert_close(out[c], net(x[c][None, None])[0, 0])


def test_minimum_size_error_and_names(tmp_path):
    den = Denoiser("n3", 25, lambda t: t, min_size=76)
    with pytest.raises(InputError, match="at least 76"):
        den(torch.rand(1, 70, 100))
    with pytest.raises(DataNotFoundError, match="no published DnCNN"):
        load_denoiser("dncnn", 25)
    with pytest.raises(DataNotFoundError, match=r"config\.json"):
        load_denoiser(str(tmp_path / "nothing"), 25)


def test_load_model_from_run_folder(tmp_path):
    net = DnCNN(depth=3, features=4).eval()
    net.save_pretrained(tmp_path / "run" / "model")
    back = load_model(tmp_path / "run")
    assert isinstance(back, DnCNN)
    den = load_denoiser(str(tmp_path / "run"), 25, tile=None)
    x = torch.rand(1, 1, 20, 20)
    torch.testing.assert_close(den(x), net(x))


@pytest.mark.slow
def test_bm3d_baseline_removes_noise():
    pytest.importorskip("bm3d")
    g = torch.Generator().manual_seed(0)
    clean = torch.linspace(0.2, 0.8, 48).repeat(48, 1)[None]
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=g)
    out = load_denoiser("bm3d", 25)(noisy)
    assert (out - clean).pow(2).mean() < 0.25 * (noisy - clean).pow(2).mean()


@pytest.mark.slow
@pytest.mark.data
def test_tiled_n3net_matches_untiled(shared_weights, shared_datasets):
    """The published N3Net on a Set12 crop: tiled output within 35 dB of the untiled one
    (the search window reaches past any practical overlap, so tiling is not exact for N3Net)."""
    from knnlab.data import read_image

    den = load_denoiser("n3net-official", 25, tile=None)
    clean = read_image(shared_datasets / "Set12" / "03.png", channels=1)[:, 40:120, 30:140]
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    full = den(noisy)
    den.tile, den.overlap = 80, 48
    tiled = den(noisy)
    assert float(-10 * torch.log10((tiled - full).pow(2).mean())) > 35.0


@pytest.mark.parametrize("sigma", [0.0, -3.0, float("nan"), float("inf")])
def test_load_denoiser_rejects_bad_sigma(sigma):
    with pytest.raises(InputError, match="--sigma"):
        load_denoiser("bm3d", sigma)
