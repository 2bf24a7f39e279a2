import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3.sr_data import SRPatchDataset, bicubic_pair, load_y_images, modcrop


def _images(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 40 + 7 * i, 50 + 3 * i, generator=g) for i in range(n)]


def _is_crop_of(patch: torch.Tensor, images) -> bool:
    """Brute force: is ``patch`` (1, P, P) a crop of some image under one of the 8 flips/rotations?"""
    p = patch.shape[-1]
    for im in images:
        for k in range(8):
            t = torch.rot90(patch, -(k % 4), dims=(-2, -1)) if k < 4 else None
            if t is None:
                t = torch.rot90(torch.flip(patch, dims=(-1,)), -(k % 4), dims=(-2, -1))
            win = im.unfold(-2, p, 1).unfold(-2, p, 1)  # (1, H-p+1, W-p+1, p, p)
            if (win == t[0]).flatten(-2).all(-1).any():
                return True
    return False


def test_groups_hold_every_scale_and_real_crops():
    images = _images()
    ds = SRPatchDataset(images, 24, scales=(2, 3, 4), length=5, seed=3)
    x, y = ds[2]
    assert x.shape == y.shape == (3, 1, 24, 24)
    for j, s in enumerate((2, 3, 4)):
        assert _is_crop_of(y[j], [modcrop(im, s) for im in images])
        assert not torch.equal(x[j], y[j])  # degraded


def test_deterministic_pure_function_of_seed_epoch_index():
    images = _images()
    a = SRPatchDataset(images, 20, length=6, seed=7)
    b = SRPatchDataset(images, 20, length=6, seed=7)
    for i in (5, 0, 3):  # order of access does not matter
        torch.testing.assert_close(a[i], b[i], rtol=0, atol=0)
    c = SRPatchDataset(images, 20, length=6, seed=8)
    assert not torch.equal(a[0][1], c[0][1])
    a.set_epoch(1)
    assert not torch.equal(a[0][1], b[0][1])


def test_constant_image_survives_the_degradation():
    # bicubic down/up of a constant is the constant (normalised kernel weights)
    hr, lr, up = bicubic_pair(torch.full((1, 30, 33), 0.4, dtype=torch.float64), 3)
    assert hr.shape == (1, 30, 33) and lr.shape == (1, 10, 11) and up.shape == hr.shape
    torch.testing.assert_close(up, hr)


def test_bad_arguments():
    with pytest.raises(InputError, match="scale 1"):
        SRPatchDataset(_images(), 20, scales=(1,), length=2)
    with pytest.raises(InputError, match="smaller than patch_size"):
        SRPatchDataset(_images(), 45, length=2)


def test_training_sets_as_y(shared_datasets):
    images, dropped = load_y_images(["T91"], min_size=80)
    assert all(im.shape[0] == 1 and min(im.shape[-2:]) >= 80 for im in images)
    assert len(images) + len(dropped) == 91
    # 8-bit Y of an RGB image lies in MATLAB's [16, 235] range, on the 1/255 grid
    v = images[0] * 255
    assert float(v.min()) >= 16 - 1e-4 and float(v.max()) <= 235 + 1e-4
    torch.testing.assert_close(v, v.round())
