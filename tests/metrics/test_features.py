"""Feature networks: shapes and plumbing with random weights (Inception-v3 of FID, VGG-16 fc2),
weights from safetensors/pt files, checksummed downloads from a local server, clear errors when
weights are missing; the in-project MNIST classifier."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest
import torch

from knnlab.errors import DataNotFoundError, InputError
from knnlab.metrics.features import extract_features
from knnlab.metrics.features.inception import FIDInceptionV3, inception_v3_fid
from knnlab.metrics.features.mnist import (
    BUILTIN_CLASSIFIER_DIR,
    ClassifierConfig,
    MNISTClassifier,
    builtin_classifier,
    load,
    save,
    train,
)
from knnlab.metrics.features.vgg import VGG16Features, vgg16_fc2
from knnlab.metrics.features.weights import download_weights, load_state_dict


@pytest.fixture(scope="module")
def inception() -> FIDInceptionV3:
    torch.manual_seed(0)
    return inception_v3_fid(pretrained=False)


def test_inception_shapes(inception) -> None:
    x = torch.rand(2, 1, 28, 28)  # grayscale, resized to 299x299 inside
    with torch.no_grad():
        f = inception.features(x)
        logits = inception(x[:1])
    assert f.shape == (2, 2048) and logits.shape == (1, 1008)
    assert torch.isfinite(f).all() and (f >= 0).all()  # pooled ReLU activations


def test_inception_architecture_matches_the_fid_network(inception) -> None:
    sd = inception.state_dict()
    n_params = sum(
        v.numel()
        for k, v in sd.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    # Keras' InceptionV3 (same graph, BN without gamma, 1000 classes) has 23,851,784 parameters,
    # 34,432 of them BN moving statistics: conv weights = 23,851,784 - 17,216 (beta) - 34,432
    # - 2,049,000 (fc) = 21,751,136; plus gamma and beta (34,432) and a 1008-class fc (2,065,392).
    assert n_params == 21_751_136 + 34_432 + 2_065_392
    assert sd["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert sd["fc.weight"].shape == (1008, 2048)
    assert inception.Conv2d_1a_3x3.bn.eps == 1e-3


def test_inception_weights_from_safetensors(inception, tmp_path) -> None:
    from safetensors.torch import save_file

    sd = {k: v.clone() for k, v in inception.state_dict().items()}
    save_file(sd, str(tmp_path / "w.safetensors"))
    x = torch.rand(1, 3, 80, 80)
    with torch.no_grad():
        m = inception_v3_fid(tmp_path / "w.safetensors", resize_input=False, sha256=None)
        inception.resize_input = False
        torch.testing.assert_close(m.features(x), inception.features(x))
        inception.resize_input = True


def test_inception_rejects_wrong_state_dict(tmp_path) -> None:
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not an FID Inception"):
        inception_v3_fid(tmp_path / "bad.pth", sha256=None)


def test_missing_weights_error_says_how_to_get_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        inception_v3_fid()
    with pytest.raises(DataNotFoundError, match=r"vgg16-397923af\.pth"):
        vgg16_fc2()
    with pytest.raises(DataNotFoundError, match="not found"):
        inception_v3_fid(tmp_path / "nope.pth")


@pytest.mark.slow
def test_vgg16_shapes_and_torchvision_names() -> None:
    torch.manual_seed(0)
    m = vgg16_fc2(pretrained=False)
    with torch.no_grad():
        f = m.features(torch.rand(1, 1, 32, 32))
    assert f.shape == (1, 4096) and (f >= 0).all()
    sd = m.state_dict()
    tv = {
        ("features." + k[len("features_net.") :] if k.startswith("features_net.") else k): v
        for k, v in sd.items()
    }
    assert {
        "features.0.weight",
        "features.28.bias",
        "classifier.0.weight",
        "classifier.6.weight",
    } <= set(tv)
    assert tv["classifier.0.weight"].shape == (4096, 25088)
    m2 = VGG16Features()
    m2.load_torchvision_state_dict(tv)
    torch.testing.assert_close(m2.features_net[28].weight, m.features_net[28].weight)
    with pytest.raises(RuntimeError):
        m2.load_torchvision_state_dict({"features.0.weight": torch.zeros(1)})


def test_load_state_dict_refuses_non_tensor_pickles(tmp_path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(InputError, match="tensors-only"):
        load_state_dict(tmp_path / "evil.pt")


@pytest.fixture()
def http_dir(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_checksummed_download(http_dir, tmp_path) -> None:
    root, url = http_dir
    payload = np.random.default_rng(0).bytes(300_000)
    (root / "w-abc.pth").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "dl"
    with pytest.raises(DataNotFoundError, match="sha256 mismatch"):
        download_weights(f"{url}/w-abc.pth", "0" * 64, directory=dest)
    assert not any(dest.iterdir())  # nothing half-written is left behind
    path = download_weights(f"{url}/w-abc.pth", digest, directory=dest)
    assert path.read_bytes() == payload
    (root / "w-abc.pth").unlink()  # a second call uses the verified file
    assert download_weights(f"{url}/w-abc.pth", digest, directory=dest) == path
    with pytest.raises(InputError, match="full sha256"):  # a prefix is not a checksum
        download_weights(f"{url}/w-abc.pth", digest[:8], directory=dest)
    with pytest.raises(DataNotFoundError, match="could not download"):
        download_weights(f"{url}/missing.pth", digest, directory=dest)


def test_weights_from_url(http_dir, tmp_path, monkeypatch, inception) -> None:
    root, url = http_dir
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    torch.save({"state_dict": inception.state_dict()}, root / "inc.pth")  # a wrapped .pth
    digest = hashlib.sha256((root / "inc.pth").read_bytes()).hexdigest()
    m = inception_v3_fid(f"{url}/inc.pth", sha256=digest)
    torch.testing.assert_close(m.fc.weight, inception.fc.weight)
    with pytest.raises(InputError, match="full sha256"):
        inception_v3_fid(f"{url}/inc.pth", sha256="deadbeef")
    with pytest.raises(DataNotFoundError, match="sha256 mismatch"):
        inception_v3_fid(f"{url}/inc.pth", sha256="0" * 64)


def test_locally_found_weights_are_verified_in_full(tmp_path, monkeypatch) -> None:
    # a file with the published name in $KNNLAB_WEIGHTS but other content is refused, not loaded
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "inception").mkdir()
    (tmp_path / "inception" / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"impostor")
    with pytest.raises(
        InputError, match="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
    ):
        inception_v3_fid()


def test_mnist_classifier_save_load_and_features(tmp_path) -> None:
    torch.manual_seed(0)
    m = MNISTClassifier(ClassifierConfig(channels=4, feature_dim=16)).eval()
    x = torch.rand(7, 1, 28, 28)
    f = m.features(x)
    assert f.shape == (7, 16) and m.feature_dim == 16
    assert m.features(torch.rand(2, 3, 32, 32)).shape == (2, 16)  # RGB, resized
    save(m, tmp_path / "c")
    m2 = load(tmp_path / "c")
    torch.testing.assert_close(m2.features(x), f, rtol=0, atol=0)
    np.testing.assert_allclose(
        extract_features(m2, x, batch_size=3), f.detach().numpy(), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(DataNotFoundError, match="--classifier"):
        load(tmp_path / "nothing")


def test_mnist_classifier_training_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 64)
    cfg = ClassifierConfig(channels=4, feature_dim=8)
    a = train(x, y, epochs=1, batch_size=16, config=cfg, seed=3)
    b = train(x, y, epochs=1, batch_size=16, config=cfg, seed=3)
    for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=k)


@pytest.mark.skipif(
    not (BUILTIN_CLASSIFIER_DIR / "model.safetensors").is_file(), reason="classifier not shipped"
)
def test_builtin_classifier_accuracy(shared_datasets) -> None:
    from knnlab.metrics.features.mnist import accuracy

    with np.load(shared_datasets / "MNIST" / "mnist.npz") as d:
        x, y = d["x_test"][:2000], d["y_test"][:2000]
    assert accuracy(builtin_classifier(), x, y) > 0.97
