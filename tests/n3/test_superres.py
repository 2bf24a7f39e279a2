import numpy as np
import torch
from skimage.color import rgb2ycbcr

from knnlab.data import imresize
from knnlab.n3.superres import load_upscaler
from knnlab.n3.vdsr import VDSR


def _trained_like(tmp_path):
    torch.manual_seed(0)
    net = VDSR(depth=3, features=4)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    net.eval().save_pretrained(tmp_path / "m")
    return net, tmp_path / "m"


def test_rgb_goes_through_y_and_keeps_bicubic_chroma(tmp_path):
    net, folder = _trained_like(tmp_path)
    up = load_upscaler(folder, tile=None)
    g = torch.Generator().manual_seed(1)
    img = 0.3 + 0.4 * torch.rand(3, 12, 10, generator=g)  # mid-range: nothing is clipped
    out = up.upscale(img, 2)
    assert out.shape == (3, 24, 20)
    bic = imresize(img.double(), 2).clamp(0, 1)

    def ycbcr(x):  # skimage's BT.601 conversion, an independent implementation
        return rgb2ycbcr(x.permute(1, 2, 0).double().numpy()) / 255.0

    y_bic = torch.from_numpy(ycbcr(bic)[..., 0])[None, None].float()
    with torch.no_grad():
        want_y = net(y_bic)[0, 0].double().numpy()
    got = ycbcr(out)
    np.testing.assert_allclose(got[..., 0], want_y, atol=2e-5)
    np.testing.assert_allclose(got[..., 1:], ycbcr(bic)[..., 1:], atol=2e-5)


def test_bicubic_is_imresize_and_gray_works(tmp_path):
    img = torch.rand(1, 9, 13, generator=torch.Generator().manual_seed(2))
    out = load_upscaler("bicubic").upscale(img, 3)
    torch.testing.assert_close(out, imresize(img.double(), 3).clamp(0, 1).float())


def test_tiled_equals_untiled_for_a_convolutional_model(tmp_path):
    _, folder = _trained_like(tmp_path)
    img = torch.rand(1, 40, 36, generator=torch.Generator().manual_seed(3))
    whole = load_upscaler(folder, tile=None).upscale(img, 2)
    tiled = load_upscaler(folder, tile=32, overlap=16).upscale(img, 2)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)
