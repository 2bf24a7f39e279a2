"""PSNR and SSIM against scikit-image (an independent implementation), to 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.data import rgb_to_y
from knnlab.errors import InputError
from knnlab.metrics import psnr, ssim

skm = pytest.importorskip("skimage.metrics")


def _pair(b=2, c=3, h=40, w=48, sigma=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g, dtype=torch.float64)
    x = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)  # some structure
    y = (x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def _crop(a: np.ndarray, shave: int) -> np.ndarray:
    return a[..., shave:-shave, shave:-shave] if shave else a


def _sk_psnr(x, y, data_range, shave=0):
    return skm.peak_signal_noise_ratio(_crop(x, shave), _crop(y, shave), data_range=data_range)


def _sk_ssim(x, y, data_range, shave=0):
    x, y = _crop(x, shave), _crop(y, shave)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)
    if x.shape[0] == 1:
        return skm.structural_similarity(x[0], y[0], **kw)
    return skm.structural_similarity(x, y, channel_axis=0, **kw)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("shave", [0, 4])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_against_skimage(c, shave, data_range):
    x, y = _pair(c=c)
    x, y = x * data_range, y * data_range
    p = psnr(x, y, data_range=data_range, shave=shave)
    s = ssim(x, y, data_range=data_range, shave=shave)
    assert p.shape == (2,) and s.shape == (2,) and p.dtype == torch.float64
    for i in range(2):
        xi, yi = x[i].numpy(), y[i].numpy()
        assert abs(p[i].item() - _sk_psnr(xi, yi, data_range, shave)) < 1e-4
        assert abs(s[i].item() - _sk_ssim(xi, yi, data_range, shave)) < 1e-4


@pytest.mark.parametrize("shave", [0, 2])
def test_y_channel_against_skimage(shave):
    x, y = _pair(c=3, sigma=0.05, seed=1)
    yx, yy = rgb_to_y(x).numpy(), rgb_to_y(y).numpy()
    p = psnr(x, y, shave=shave, y_channel=True)
    s = ssim(x, y, shave=shave, y_channel=True)
    for i in range(2):
        assert abs(p[i].item() - _sk_psnr(yx[i], yy[i], 1.0, shave)) < 1e-4
        assert abs(s[i].item() - _sk_ssim(yx[i], yy[i], 1.0, shave)) < 1e-4


def test_y_channel_matches_matlab_rgb2ycbcr_on_uint8_scale():
    # MATLAB rgb2ycbcr on uint8 [255 0 0] gives Y = 81 (16 + 65.481), on white Y = 235, on black 16.
    rgb = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]).view(3, 1, 3)
    y = rgb_to_y(rgb) * 255
    torch.testing.assert_close(y.flatten(), torch.tensor([81.481, 16.0, 235.0]), atol=1e-3, rtol=0)


def test_unbatched_float32_and_identical():
    x, y = _pair(b=1, c=1)
    x32, y32 = x[0].float(), y[0].float()
    assert psnr(x32, y32).ndim == 0 and ssim(x32, y32).ndim == 0
    assert (
        abs(psnr(x32, y32).item() - _sk_psnr(x32.double().numpy(), y32.double().numpy(), 1.0))
        < 1e-4
    )
    assert psnr(x, x).isinf().all()
    torch.testing.assert_close(ssim(x, x), torch.ones(1, dtype=torch.float64))


def test_noncontiguous_input():
    x, y = _pair(c=3)
    xt, yt = x.transpose(-1, -2), y.transpose(-1, -2)
    assert not xt.is_contiguous()
    torch.testing.assert_close(ssim(xt, yt), ssim(xt.contiguous(), yt.contiguous()))


def test_errors():
    x, y = _pair()
    with pytest.raises(InputError, match="shape"):
        psnr(x, y[:, :, :-1])
    with pytest.raises(InputError, match=r"\(C, H, W\)"):
        ssim(x[0, 0], y[0, 0])
    bad = y.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        psnr(x, bad)
    with pytest.raises(InputError, match="NaN"):
        ssim(x, bad)
    with pytest.raises(InputError, match="y_channel"):
        psnr(x[:, :1], y[:, :1], y_channel=True)
    with pytest.raises(InputError, match="shave"):
        psnr(x, y, shave=30)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(x[..., :8, :8], y[..., :8, :8])
    with pytest.raises(InputError, match="data_range"):
        psnr(x, y, data_range=0)
