"""The CelebA-identity feature network: shapes, save/load through PretrainedMixin, the shipped
weights (sha256, held-out identity accuracy on CelebA6000), the input protocol (centre crop +
clean-fid bicubic, computed here with Pillow) and the error when the weights are missing."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from knnlab.errors import DataNotFoundError, InputError
from knnlab.metrics.features import FEATURE_NETWORKS, feature_network, get_extractor
from knnlab.metrics.features.faces import (
    BUILTIN_FACE_DIR,
    FACE_FEATURES_LABEL,
    FACE_WEIGHTS_SHA256,
    FaceFeatureConfig,
    FaceIdentityNet,
    FaceTrainConfig,
    augment,
    builtin_face_network,
    load_celeba_faces,
)

shipped = pytest.mark.skipif(
    not (BUILTIN_FACE_DIR / "model.safetensors").is_file(), reason="face weights not shipped"
)


def test_shapes_gray_and_other_sizes() -> None:
    torch.manual_seed(0)
    net = FaceIdentityNet(FaceFeatureConfig(width=8, feature_dim=32, num_classes=7)).eval()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        assert tuple(net.features(x).shape) == (3, 32)
        assert tuple(net(x).shape) == (3, 7)
        assert (net.features(x) >= 0).all()  # post-ReLU
        g = torch.rand(2, 1, 64, 64)
        torch.testing.assert_close(net.features(g), net.features(g.expand(-1, 3, -1, -1)))
        assert tuple(net.features(torch.rand(2, 3, 100, 90)).shape) == (2, 32)
    with pytest.raises(InputError, match=r"channels|shape"):
        net.features(torch.rand(2, 4, 64, 64))


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = FaceIdentityNet(FaceFeatureConfig(width=8, feature_dim=16)).eval()
    net.save_pretrained(tmp_path / "m")
    back = FaceIdentityNet.from_pretrained(tmp_path / "m")
    assert back.config == net.config
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(back.features(x), net.features(x), rtol=0, atol=0)


def test_registry_names() -> None:
    assert set(FEATURE_NETWORKS) == {"inception", "vgg16", "mnist", "faces"}
    spec = feature_network("faces")
    assert spec.label == FACE_FEATURES_LABEL == "CelebA-identity features (knnlab)"
    assert (spec.resolution, spec.channels, spec.center_crop) == (64, 3, True)
    assert feature_network("MNIST-classifier") is FEATURE_NETWORKS["mnist"]
    with pytest.raises(InputError, match="--features 'resnet'"):
        feature_network("resnet")


def test_augment_keeps_pixels() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    y = augment(x, 0)  # flips only: each image is itself or its mirror
    for a, b in zip(x, y, strict=True):
        assert torch.equal(a, b) or torch.equal(a.flip(-1), b)
    z = augment(x, 3)
    assert z.shape == x.shape and (z == 0).any()  # shifted in zeros somewhere


def test_train_config_errors() -> None:
    with pytest.raises(InputError, match="--steps"):
        FaceTrainConfig(steps=0)
    with pytest.raises(InputError, match="--lr"):
        FaceTrainConfig(lr=0.0)


def test_missing_and_corrupt_weights(tmp_path: Path, monkeypatch) -> None:
    import knnlab.metrics.features.faces as faces

    monkeypatch.setattr(faces, "BUILTIN_FACE_DIR", tmp_path)
    with pytest.raises(
        DataNotFoundError, match=r"model\.safetensors.*sha256.*knnlab train features"
    ):
        faces.builtin_face_network()
    monkeypatch.setattr(faces, "FACE_WEIGHTS_SHA256", "0" * 64)
    FaceIdentityNet(FaceFeatureConfig(width=8)).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="sha256"):
        faces.builtin_face_network()


@shipped
def test_shipped_weights_checksum_and_size() -> None:
    path = BUILTIN_FACE_DIR / "model.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == FACE_WEIGHTS_SHA256
    assert path.stat().st_size < 4 * 2**20  # a few MB at most
    net = get_extractor("faces")
    assert isinstance(net, FaceIdentityNet) and net.feature_dim == 256


def _pil_face(path: Path) -> np.ndarray:
    """Centre 178x178 crop and clean-fid's bicubic to 64x64, written with Pillow: (3, 64, 64)."""
    u8 = np.asarray(Image.open(path).convert("RGB"))
    h, w = u8.shape[:2]
    s = min(h, w)
    u8 = u8[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    ch = [
        np.asarray(
            Image.fromarray(u8[:, :, c].astype(np.float32), mode="F").resize(
                (64, 64), Image.Resampling.BICUBIC
            )
        )
        for c in range(3)
    ]
    return np.clip(np.stack(ch), 0, 255)


@shipped
@pytest.mark.slow
def test_heldout_identity_accuracy(shared_datasets: Path) -> None:
    """On the 600 faces of the test split (3 per identity), read and cropped here with Pillow."""
    root = shared_datasets / "CelebA6000"
    if not root.is_dir():
        pytest.skip("CelebA6000 not in the data root")
    with open(root / "manifest.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    ids = sorted({r["class_dir"] for r in rows}, key=lambda s: int(s.split("_")[1]))
    test = [r for r in rows if r["split"] == "test_dataset"]
    x = np.stack([_pil_face(root / "images" / r["file"]) for r in test]) / 255.0
    y = np.array([ids.index(r["class_dir"]) for r in test])
    net = builtin_face_network()
    with torch.no_grad():
        pred = np.concatenate(
            [
                net(torch.from_numpy(x[i : i + 100]).float()).argmax(1).numpy()
                for i in range(0, len(x), 100)
            ]
        )
    acc = float((pred == y).mean())
    assert acc > 0.2, acc  # chance is 1/200 = 0.005


@pytest.mark.slow
def test_celeba_loader_matches_pillow(shared_datasets: Path) -> None:
    root = shared_datasets / "CelebA6000"
    if not root.is_dir():
        pytest.skip("CelebA6000 not in the data root")
    x, y = load_celeba_faces(("validation_dataset",), root)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (600, 3, 64, 64) and len(y) == 600
    with open(root / "manifest.tsv", newline="") as f:
        first = next(
            r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "validation_dataset"
        )
    ref = _pil_face(root / "images" / first["file"])
    assert np.abs(x[0].numpy().astype(np.float64) - ref).max() <= 0.5 + 1e-6  # rounded to 8 bits
    assert int(y[0]) == int(first["class_dir"].split("_")[1])
