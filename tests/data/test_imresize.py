"""imresize against MATLAB: published MATLAB outputs, an independent slow reference that follows
MATLAB's documented algorithm with explicit loops, and the SelfExSR benchmark pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from knnlab.data import imresize, list_images, read_image
from knnlab.errors import InputError

# --- Published MATLAB outputs -----------------------------------------------------------------
# From the test block of GNU Octave's image package, inst/imresize.m ("Test bicubic interpolations
# against some reference results from matlab"; copyright Søren Hauberg, Carnë Draug, Christof
# Kaufmann). Input and outputs are uint8; MATLAB rounds uint8 results, so the tests there (and here)
# allow a difference of 1.
OCTAVE_IN = np.array(
    [
        [116, 227, 153, 69, 146, 194, 59, 130, 139, 106],
        [2, 47, 137, 249, 90, 75, 16, 24, 158, 44],
        [155, 68, 46, 84, 166, 156, 69, 204, 32, 152],
        [71, 221, 137, 230, 210, 153, 192, 115, 30, 118],
        [107, 143, 108, 52, 51, 73, 101, 21, 175, 90],
        [54, 158, 143, 77, 26, 168, 113, 229, 165, 225],
        [9, 47, 133, 135, 130, 207, 236, 43, 19, 73],
        [129, 60, 59, 243, 64, 181, 249, 56, 32, 86],
    ]
)
MATLAB_OUT = {
    (0.5, False): [
        [92, 164, 123, 38, 118],
        [139, 116, 188, 167, 69],
        [121, 87, 67, 108, 180],
        [54, 153, 141, 149, 42],
    ],
    (0.5, True): [
        [105, 140, 126, 81, 109],
        [110, 134, 153, 114, 93],
        [108, 108, 94, 127, 146],
        [67, 126, 162, 149, 62],
    ],
    (1 / 3, False): [[47, 90, 24, 44], [143, 51, 21, 90], [60, 64, 56, 86]],
    (1 / 3, True): [[115, 135, 97, 101], [113, 119, 124, 125], [81, 157, 118, 64]],
    (1.5, True): [
        [116, 187, 237, 171, 94, 61, 135, 191, 187, 75, 91, 142, 140, 124, 108],
        [43, 92, 143, 149, 164, 163, 119, 123, 118, 44, 38, 80, 151, 118, 62],
        [13, 21, 47, 107, 195, 228, 115, 81, 70, 24, 19, 56, 137, 105, 48],
        [146, 98, 49, 49, 71, 107, 148, 159, 132, 58, 124, 176, 61, 85, 146],
        [118, 139, 144, 92, 116, 168, 201, 188, 159, 140, 167, 158, 27, 69, 153],
        [61, 151, 218, 145, 174, 219, 201, 164, 146, 187, 148, 84, 48, 76, 115],
        [102, 132, 151, 119, 90, 72, 72, 72, 83, 114, 60, 31, 144, 130, 80],
        [81, 121, 154, 133, 87, 41, 19, 67, 116, 95, 108, 140, 183, 180, 163],
        [37, 95, 152, 150, 117, 73, 35, 108, 179, 130, 174, 214, 153, 176, 219],
        [3, 29, 73, 131, 136, 120, 116, 162, 214, 229, 147, 54, 35, 62, 96],
        [67, 54, 51, 83, 153, 187, 111, 141, 210, 255, 149, 22, 13, 42, 74],
        [142, 99, 53, 43, 164, 237, 77, 103, 197, 254, 159, 42, 31, 59, 91],
    ],
    (4 / 3, True): [
        [116, 203, 221, 141, 62, 110, 180, 191, 70, 104, 143, 136, 111, 106],
        [26, 78, 126, 156, 200, 139, 103, 103, 33, 28, 92, 158, 67, 46],
        [51, 35, 51, 112, 195, 146, 101, 87, 29, 57, 100, 114, 81, 74],
        [159, 110, 63, 50, 82, 148, 179, 152, 83, 173, 147, 27, 143, 170],
        [70, 171, 189, 134, 217, 226, 193, 158, 186, 157, 83, 25, 114, 135],
        [91, 152, 162, 116, 118, 114, 102, 98, 138, 65, 60, 127, 92, 84],
        [90, 130, 144, 111, 52, 24, 50, 101, 94, 86, 129, 190, 146, 135],
        [41, 114, 157, 139, 89, 37, 82, 178, 125, 192, 203, 154, 213, 227],
        [4, 33, 89, 141, 127, 118, 151, 213, 232, 119, 35, 34, 81, 92],
        [88, 61, 54, 97, 203, 129, 115, 203, 255, 119, 18, 24, 70, 81],
        [147, 91, 43, 68, 247, 125, 80, 191, 255, 130, 33, 37, 83, 94],
    ],
}


@pytest.mark.parametrize(("scale", "antialias"), list(MATLAB_OUT))
def test_matches_published_matlab_uint8_outputs(scale, antialias):
    x = torch.tensor(OCTAVE_IN, dtype=torch.float64)[None]
    out = imresize(x, scale, antialias=antialias)
    got = out.round().clamp(0, 255)[0].numpy()
    expect = np.array(MATLAB_OUT[(scale, antialias)])
    assert got.shape == expect.shape
    assert np.abs(got - expect).max() <= 1


def test_matches_published_float_values():
    x = torch.arange(16, dtype=torch.float64).view(1, 4, 4)
    # Octave image package, imresize(transpose(reshape(0:15, 4, 4)), 0.5, 'bicubic',
    # 'AntiAliasing', false), as printed in a public script: [2.1875 4.3125; 10.6875 12.8125].
    torch.testing.assert_close(
        imresize(x, 0.5, antialias=False)[0],
        torch.tensor([[2.1875, 4.3125], [10.6875, 12.8125]], dtype=torch.float64),
        atol=1e-4,
        rtol=0,
    )
    # sanghyun-son/bicubic_pytorch core.py docstring (a port checked against MATLAB .mat files):
    # imresize(arange(16).view(4, 4), sizes=(3, 3)) with antialiasing. (The docstring prints
    # 6.1505 for [1, 0]; the input is linear in i and j, so symmetry fixes it at 6.1501.)
    expect = torch.tensor(
        [[0.7506, 2.1004, 3.4503], [6.1505, 7.5000, 8.8499], [11.5497, 12.8996, 14.2494]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(imresize(x, size=(3, 3))[0], expect, atol=5e-4, rtol=0)


# --- Independent slow reference ---------------------------------------------------------------
def _cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _mirror(i: int, n: int) -> int:
    """0-based index with symmetric padding: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ..."""
    period = 2 * n
    i %= period
    return i if i < n else period - 1 - i


def _resize_1d(v: list[float], out_len: int, scale: float, antialias: bool) -> list[float]:
    n = len(v)
    stretch = 1 / scale if (scale < 1 and antialias) else 1.0
    width = 4 * stretch
    out = []
    for x in range(1, out_len + 1):  # MATLAB's 1-based output coordinate
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + k for k in range(math.ceil(width) + 2)]
        w = [_cubic((u - j) / stretch) / stretch for j in taps]
        total = sum(w)
        out.append(sum(wk / total * v[_mirror(j - 1, n)] for wk, j in zip(w, taps)))
    return out


def _slow_imresize(
    img: np.ndarray, scale_h: float, scale_w: float, out_h: int, out_w: int, aa: bool
):
    h, w = img.shape
    rows_first = scale_h <= scale_w
    a = [list(r) for r in img]
    if rows_first:
        cols = [_resize_1d([a[i][j] for i in range(h)], out_h, scale_h, aa) for j in range(w)]
        a = [[cols[j][i] for j in range(w)] for i in range(out_h)]
        a = [_resize_1d(r, out_w, scale_w, aa) for r in a]
    else:
        a = [_resize_1d(r, out_w, scale_w, aa) for r in a]
        cols = [_resize_1d([a[i][j] for i in range(h)], out_h, scale_h, aa) for j in range(out_w)]
        a = [[cols[j][i] for j in range(out_w)] for i in range(out_h)]
    return np.array(a)


@pytest.mark.parametrize(
    ("shape", "scale", "antialias"),
    [
        ((9, 11), 0.5, True),
        ((9, 11), 1 / 3, True),
        ((10, 7), 0.25, True),
        ((10, 7), 0.3, False),
        ((5, 6), 2.0, True),
        ((5, 6), 1.7, True),
        ((12, 8), 0.75, True),
    ],
)
def test_against_slow_reference_by_scale(shape, scale, antialias):
    img = np.random.default_rng(0).random(shape)
    out_h, out_w = math.ceil(scale * shape[0]), math.ceil(scale * shape[1])
    ref = _slow_imresize(img, scale, scale, out_h, out_w, antialias)
    got = imresize(torch.from_numpy(img)[None], scale, antialias=antialias)[0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize(
    ("in_shape", "out_shape"), [((8, 8), (3, 5)), ((7, 9), (11, 4)), ((6, 6), (6, 13))]
)
def test_against_slow_reference_by_size(in_shape, out_shape):
    img = np.random.default_rng(1).random(in_shape)
    sh, sw = out_shape[0] / in_shape[0], out_shape[1] / in_shape[1]
    ref = _slow_imresize(img, sh, sw, *out_shape, True)
    got = imresize(torch.from_numpy(img)[None], size=out_shape)[0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_shapes_batches_dtype_and_constants():
    x = torch.rand(2, 3, 17, 23)
    y = imresize(x, 0.5)
    assert y.shape == (2, 3, 9, 12) and y.dtype == torch.float32
    torch.testing.assert_close(y[1, 2], imresize(x[1, 2:3], 0.5)[0])
    assert imresize(torch.rand(3, 255, 256), 1 / 3).shape == (3, 85, 86)
    const = torch.full((1, 10, 10), 0.3, dtype=torch.float64)
    torch.testing.assert_close(
        imresize(const, 0.37), torch.full((1, 4, 4), 0.3, dtype=torch.float64)
    )
    # Up-scaling by an integer factor and back down is close to the identity on smooth images.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    smooth = (torch.sin(3 * xx) * torch.cos(2 * yy))[None].double()
    assert (imresize(imresize(smooth, 2.0), 0.5) - smooth).abs().max() < 0.02


def test_errors():
    with pytest.raises(InputError, match="exactly one"):
        imresize(torch.rand(1, 4, 4))
    with pytest.raises(InputError, match="exactly one"):
        imresize(torch.rand(1, 4, 4), 0.5, size=(2, 2))
    with pytest.raises(InputError, match="scale"):
        imresize(torch.rand(1, 4, 4), -1.0)
    with pytest.raises(InputError, match="size"):
        imresize(torch.rand(1, 4, 4), size=(0, 2))
    with pytest.raises(InputError, match="floating point"):
        imresize(torch.zeros(1, 4, 4, dtype=torch.uint8), 0.5)
    with pytest.raises(InputError, match=r"\(C, H, W\)"):
        imresize(torch.rand(4, 4), 0.5)


@pytest.mark.data
@pytest.mark.parametrize("factor", [2, 4])
def test_selfexsr_set5_pairs(shared_datasets, factor):
    """README of ../shared: the SelfExSR LR inputs are not bit-identical to MATLAB's bicubic of the
    HR images (about 85% of pixels equal, max difference 7), so this is a loose sanity check."""
    folder = shared_datasets / "SelfExSR" / "Set5" / f"image_SRF_{factor}"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    equal = total = 0
    worst = 0.0
    for hr_path in [p for p in list_images(folder) if p.stem.endswith("_HR")]:
        hr = read_image(hr_path).double()
        lr = read_image(hr_path.with_name(hr_path.name.replace("_HR", "_LR"))).double()
        ours = torch.round(imresize(hr, 1 / factor).clamp(0, 1) * 255)
        diff = (ours - torch.round(lr * 255)).abs()
        assert diff.shape == lr.shape
        equal += int((diff == 0).sum())
        total += diff.numel()
        worst = max(worst, float(diff.max()))
    assert total > 0
    assert equal / total > 0.83
    assert worst <= 7
