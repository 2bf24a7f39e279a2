"""Named data sets under the data root, and MNIST."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.data import DATASETS, dataset_dir, load_images, load_mnist, write_image
from knnlab.errors import DataNotFoundError, InputError


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    (tmp_path / "Set12").mkdir()
    for i in range(3):
        write_image(tmp_path / "Set12" / f"{i:02d}.png", torch.full((1, 8, 9), i / 4))
    (tmp_path / "MNIST").mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "MNIST" / "mnist.npz",
        x_train=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_train=np.arange(5, dtype=np.uint8),
        x_test=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        y_test=np.arange(2, dtype=np.uint8),
    )
    monkeypatch.setenv("KNNLAB_DATA", str(tmp_path))
    return tmp_path


def test_dataset_dir_is_case_insensitive(fake_root):
    assert dataset_dir("set12") == fake_root / "Set12"
    assert dataset_dir("SET12") == fake_root / "Set12"


def test_unknown_and_missing(fake_root):
    with pytest.raises(InputError, match="choose from Train400, Set12, BSD68"):
        dataset_dir("Set13")
    with pytest.raises(DataNotFoundError, match="KNNLAB_DATA"):
        dataset_dir("BSD68")


def test_missing_root_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("KNNLAB_DATA", raising=False)
    monkeypatch.setattr("knnlab.paths._candidates", lambda sub: [tmp_path / "absent"])
    with pytest.raises(DataNotFoundError, match="KNNLAB_DATA"):
        dataset_dir("Set12")


def test_load_images(fake_root, tmp_path):
    ims = load_images("set12")
    assert len(ims) == 3 and ims[2].shape == (1, 8, 9)
    assert ims[2].mean().item() == pytest.approx(round(0.5 * 255) / 255, abs=1e-6)
    assert load_images(fake_root / "Set12", channels=3)[0].shape == (3, 8, 9)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        load_images(tmp_path / "empty")


def test_load_mnist(fake_root):
    x, y = load_mnist("train")
    assert x.dtype == torch.uint8 and x.shape == (5, 28, 28)
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 2, 3, 4]
    assert load_mnist("test")[0].shape == (2, 28, 28)
    with pytest.raises(InputError, match="split"):
        load_mnist("val")


@pytest.mark.data
def test_shared_datasets(shared_datasets, monkeypatch):
    monkeypatch.setenv("KNNLAB_DATA", str(shared_datasets))
    # image counts from ../shared/README.md (PolyU and CC15: noisy + mean per crop)
    expected = {"Train400": 400, "Set12": 12, "BSD68": 68, "Urban100": 100, "Set5": 5, "Set14": 14,
                "T91": 91, "B100": 100, "PolyU": 200, "CC15": 30}  # fmt: skip
    from knnlab.data import list_images

    for name, count in expected.items():
        assert name in DATASETS
        assert len(list_images(dataset_dir(name))) == count, name
    set12 = load_images("Set12")
    assert {tuple(x.shape) for x in set12} == {(1, 256, 256), (1, 512, 512)}
    x, y = load_mnist("test")
    assert x.shape == (10000, 28, 28) and int(y.max()) == 9


@pytest.mark.parametrize(
    "name", ["T91", "B100", "CelebA6000", "PolyU", "CC15", "TwoView/reichstag", "TwoView/lund_door"]
)
def test_new_named_sets_resolve_in_shared(name, shared_datasets):
    from knnlab.data import dataset_dir

    path = dataset_dir(name.lower())
    assert path == shared_datasets / name and path.is_dir()
