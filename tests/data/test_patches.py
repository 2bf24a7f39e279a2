"""ImageFolderDataset and PatchDataset: determinism per (seed, index), augmentation, errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from knnlab.data import ImageFolderDataset, PatchDataset, write_image
from knnlab.data.patches import dihedral
from knnlab.errors import InputError


def _images():
    g = torch.Generator().manual_seed(0)
    return [torch.rand(1, 20, 24, generator=g), torch.rand(1, 16, 16, generator=g)]


def test_items_are_pure_functions_of_seed_and_index():
    a = PatchDataset(_images(), 8, length=50, seed=3)
    b = PatchDataset(_images(), 8, length=50, seed=3)
    order = [7, 3, 49, 0, 7]
    for i in order:  # any access order gives the same items
        assert torch.equal(a[i], b[i])
    assert torch.equal(a[-1], a[49])
    c = PatchDataset(_images(), 8, length=50, seed=4)
    assert any(not torch.equal(a[i], c[i]) for i in range(10))
    a.set_epoch(1)
    assert any(not torch.equal(a[i], b[i]) for i in range(10))
    with pytest.raises(IndexError):
        a[50]


def test_patch_is_a_transformed_crop():
    ims = _images()
    ds = PatchDataset(ims, (6, 6), length=40, seed=1)
    ks = set()
    for i in range(40):
        img, top, left, k = ds.params(i)
        ks.add(k)
        crop = ims[img][:, top : top + 6, left : left + 6]
        assert torch.equal(ds[i], dihedral(crop, k))
        assert ds[i].shape == (1, 6, 6) and ds[i].dtype == torch.float32
    assert len(ks) > 4
    plain = PatchDataset(ims, 6, length=20, augment=False)
    assert {plain.params(i)[3] for i in range(20)} == {0}


def test_dihedral_group():
    x = torch.arange(12.0).view(1, 3, 4)
    outs = {
        tuple(dihedral(x, k).flatten().tolist()) + tuple(dihedral(x, k).shape) for k in range(8)
    }
    assert len(outs) == 8
    assert torch.equal(dihedral(x, 0), x)


def test_workers_reproduce_the_same_batches():
    ds = PatchDataset(_images(), 8, length=16, seed=5)
    serial = torch.cat([b for b in DataLoader(ds, batch_size=4)])
    parallel = torch.cat([b for b in DataLoader(ds, batch_size=4, num_workers=2)])
    assert torch.equal(serial, parallel)


def test_sampling_covers_images_by_area():
    ims = [torch.zeros(1, 8, 8), torch.ones(1, 40, 40)]
    ds = PatchDataset(ims, 8, length=400, augment=False)
    frac_big = sum(ds.params(i)[0] for i in range(400)) / 400
    assert frac_big > 0.9  # 1089 of 1090 crop positions are in the big image


def test_errors():
    with pytest.raises(InputError, match="smaller than patch_size"):
        PatchDataset(_images(), 17, length=4)
    with pytest.raises(InputError, match="channel counts"):
        PatchDataset([torch.rand(1, 9, 9), torch.rand(3, 9, 9)], 4, length=4)
    with pytest.raises(InputError, match="length"):
        PatchDataset(_images(), 4, length=0)
    assert PatchDataset([torch.rand(1, 9, 9), torch.rand(3, 9, 9)], 4, length=4, channels=3)[
        0
    ].shape == (3, 4, 4)


def test_folder_datasets(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i}.png", torch.full((3, 10, 12), i / 2))
    ds = ImageFolderDataset(tmp_path, channels=1)
    assert len(ds) == 3 and ds[2].shape == (1, 10, 12)
    assert ds[1] is ds[1]  # cached
    im, path = ImageFolderDataset(tmp_path, return_path=True)[0]
    assert path.endswith("0.png") and im.shape == (3, 10, 12)
    patches = PatchDataset(tmp_path, 5, length=10, channels=1)
    assert patches[0].shape == (1, 5, 5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")
