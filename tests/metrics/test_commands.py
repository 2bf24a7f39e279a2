"""``knnlab metrics REAL FAKE``: the command's numbers equal the library's on features computed
here independently (Pillow decode + the network), caching with the protocol in the name, ``.npz``
inputs, and one-line errors with exit code 2 for every bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from knnlab.cli import main
from knnlab.metrics import density_coverage, fid, kid, precision_recall


def _digits(folder: Path, n: int, seed: int, shift: float = 0.0) -> Path:
    """``n`` 28x28 gray PNGs: random strokes, so that the MNIST classifier sees varied inputs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:28, :28]
    for i in range(n):
        img = np.zeros((28, 28))
        for _ in range(3):
            cy, cx = rng.uniform(6, 22, 2) + shift
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(4, 20))
        u8 = np.clip(img / img.max() * 255, 0, 255).astype(np.uint8)
        Image.fromarray(u8).save(folder / f"{i:04d}.png")
    return folder


def _reference_features(folder: Path, batch: int) -> np.ndarray:
    from knnlab.metrics.features.mnist import builtin_classifier

    net = builtin_classifier()
    files = sorted(folder.glob("*.png"))
    arr = np.stack([np.asarray(Image.open(f), dtype=np.float32) / 255.0 for f in files])
    x = torch.from_numpy(arr)[:, None]  # (N, 1, 28, 28)
    with torch.no_grad():
        return np.concatenate(
            [net.features(x[i : i + batch]).numpy() for i in range(0, len(x), batch)]
        )


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["metrics", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    return _digits(tmp_path / "real", 48, seed=0), _digits(tmp_path / "fake", 40, seed=1, shift=2.0)


def test_command_equals_library_on_independent_features(folders, tmp_path, capsys) -> None:
    real, fake = folders
    out_json = tmp_path / "m.json"
    code, out, _ = _run(
        [str(real), str(fake), "--features", "mnist", "--fid", "--kid", "--prdc",
         "--batch-size", "16", "--kid-subsets", "20", "--kid-subset-size", "30",
         "--cache-dir", str(tmp_path / "cache"), "--json", str(out_json)],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[0] == (
        "features: MNIST-classifier features (knnlab); input 28 px, resize clean: "
        "PIL bicubic on uint8, antialiased (clean-fid)"
    )
    r, f = _reference_features(real, 16), _reference_features(fake, 16)
    res = json.loads(out_json.read_text())
    m = res["metrics"]
    assert m["fid"] == pytest.approx(fid(r, f), rel=1e-5)
    k_mean, k_std = kid(r, f, 20, 30, seed=0, return_std=True)
    assert m["kid"] == pytest.approx(k_mean, rel=1e-5, abs=1e-9)
    assert m["kid_std"] == pytest.approx(k_std, rel=1e-4, abs=1e-9)
    p, rc = precision_recall(r, f, k=3)
    d, c = density_coverage(r, f, k=5)
    assert (m["precision"], m["recall"]) == pytest.approx((p, rc))
    assert (m["density"], m["coverage"]) == pytest.approx((d, c))
    assert res["real"]["count"] == 48 and res["fake"]["count"] == 40 and res["real"]["dim"] == 128
    assert res["protocol"]["resize"] == "clean" and res["protocol"]["resolution"] == 28


def test_cache_is_named_by_protocol_and_read_back(folders, tmp_path, capsys, monkeypatch) -> None:
    real, fake = folders
    cache = tmp_path / "cache"
    args = [str(real), str(fake), "--features", "mnist", "--fid", "--cache-dir", str(cache)]
    code, out1, _ = _run(args, capsys)
    assert code == 0
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 2
    assert any(n.startswith("fake-") and n.endswith("-mnist-28px-clean-n40.npz") for n in names)
    assert any(n.startswith("real-") and n.endswith("-mnist-28px-clean-n48.npz") for n in names)
    with np.load(cache / next(n for n in names if n.startswith("fake-"))) as z:
        protocol = json.loads(str(z["protocol"]))
        np.testing.assert_allclose(z["features"], _reference_features(fake, 100), atol=1e-5)
    assert protocol["network"] == "mnist" and protocol["count"] == 40

    import knnlab.metrics.feature_cache as fc

    def boom(*a, **k):
        raise AssertionError("features recomputed although cached")

    monkeypatch.setattr(fc, "compute_features", boom)
    code, out2, _ = _run(args, capsys)
    assert code == 0 and out2.count("cached") == 2
    assert [ln for ln in out1.splitlines() if ln.startswith("fid")] == [
        ln for ln in out2.splitlines() if ln.startswith("fid")
    ]
    # another protocol is another file: a changed folder, or another resize, is recomputed
    monkeypatch.undo()
    code, _, _ = _run([*args, "--resize", "legacy"], capsys)
    assert code == 0
    assert sum(n.name.endswith("-legacy-n40.npz") for n in cache.iterdir()) == 1
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(fake / "9999.png")
    code, out3, _ = _run(args, capsys)
    assert code == 0 and "fake-" in out3 and "-n41.npz" in out3 and "computed" in out3


def test_npz_inputs(tmp_path, capsys) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(60, 8)), rng.normal(0.3, 1.0, size=(50, 8)).astype(np.float32)
    np.savez(tmp_path / "a.npz", features=a)
    np.savez(tmp_path / "b.npz", b)  # one unnamed array
    out_json = tmp_path / "r.json"
    code, out, _ = _run(
        [str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--fid", "--prdc", "--json",
         str(out_json)], capsys,
    )  # fmt: skip
    assert code == 0, out
    assert out.splitlines()[0] == "features: features from .npz files"  # no image protocol
    m = json.loads(out_json.read_text())["metrics"]
    a32 = a.astype(np.float32)
    assert m["fid"] == pytest.approx(fid(a32, b), rel=1e-9)
    assert (m["precision"], m["recall"]) == pytest.approx(precision_recall(a32, b, k=3))
    assert (m["density"], m["coverage"]) == pytest.approx(density_coverage(a32, b, k=5))


def test_novelty_and_hubness(tmp_path, capsys) -> None:
    from knnlab.hubness import hubness_stats
    from knnlab.metrics import memorization_rate

    rng = np.random.default_rng(4)
    a = rng.normal(size=(80, 6)).astype(np.float32)
    b = np.concatenate([a[:10] + 1e-3, rng.normal(size=(30, 6))]).astype(np.float32)
    np.savez(tmp_path / "a.npz", features=a)
    np.savez(tmp_path / "b.npz", features=b)
    out_json = tmp_path / "r.json"
    code, _, _ = _run(
        [str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--novelty", "--hubness", "--k-hub",
         "5", "--json", str(out_json)], capsys,
    )  # fmt: skip
    assert code == 0
    m = json.loads(out_json.read_text())["metrics"]
    assert m["memorization_rate"] == pytest.approx(memorization_rate(b, a)["rate"])
    assert m["memorization_rate"] >= 10 / 40
    assert m["hubness_fake"]["k_skewness"] == pytest.approx(hubness_stats(b, 5)["k_skewness"])
    assert "fid" not in m


def test_user_network_module_attr(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "mynet.py").write_text(
        "import torch.nn.functional as F\n"
        "class Pool:\n"
        "    resolution = 8\n"
        "    channels = 3\n"
        "    def __call__(self, x):\n"
        "        return F.avg_pool2d(x, 4).flatten(1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(5)
    for name in ("r", "f"):
        (tmp_path / name).mkdir()
        for i in range(12):
            img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
    out_json = tmp_path / "r.json"
    code, out, _ = _run(
        [str(tmp_path / "r"), str(tmp_path / "f"), "--features", "mynet:Pool", "--fid",
         "--json", str(out_json)], capsys,
    )  # fmt: skip
    assert code == 0, out

    # reference: clean-fid's resize (Pillow float bicubic per channel) then 4x4 average pooling
    def feats(folder: Path) -> np.ndarray:
        rows = []
        for p in sorted(folder.glob("*.png")):
            u8 = np.asarray(Image.open(p))
            ch = [np.asarray(Image.fromarray(u8[:, :, c].astype(np.float32), mode="F").resize(
                (8, 8), Image.Resampling.BICUBIC)) for c in range(3)]  # fmt: skip
            x = np.clip(np.stack(ch), 0, 255) / 255.0  # (3, 8, 8)
            rows.append(x.reshape(3, 2, 4, 2, 4).mean(axis=(2, 4)).reshape(-1))
        return np.stack(rows)

    m = json.loads(out_json.read_text())["metrics"]
    assert m["fid"] == pytest.approx(fid(feats(tmp_path / "r"), feats(tmp_path / "f")), rel=1e-4)
    sys.modules.pop("mynet", None)


def _one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_bad_inputs_are_one_line(tmp_path, folders, capsys) -> None:
    real, _ = folders
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    np.savez(tmp_path / "d4.npz", features=np.zeros((5, 4)))
    np.savez(tmp_path / "d5.npz", features=np.ones((5, 5)))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    mn = ["--features", "mnist", "--no-cache"]
    cases = [
        ([str(tmp_path / "missing"), str(real), *mn], "missing"),
        ([str(tmp_path / "empty"), str(real), *mn], "no images"),
        ([str(real), str(tmp_path / "bad"), *mn], "x.png"),
        ([str(tmp_path / "d4.npz"), str(tmp_path / "d5.npz")], "4-d"),
        ([str(tmp_path / "junk.npz"), str(tmp_path / "d5.npz")], "junk.npz"),
        ([str(tmp_path / "nothere.npz"), str(tmp_path / "d5.npz")], "nothere.npz"),
        ([str(real), str(real), "--features", "nonet"], "nonet"),
        ([str(real), str(real), "--features", "no_such_module:X"], "no_such_module"),
        ([str(real), str(real), *mn, "--limit", "1"], "--limit"),
        ([str(real), str(real), *mn, "--k-pr", "0"], "--k-pr"),
    ]
    for args, needle in cases:
        code, _, err = _run(args, capsys)
        assert needle in _one_line_error(code, err), (args, err)


def test_missing_weights_name_file_sha256_and_source(
    tmp_path, folders, capsys, monkeypatch
) -> None:
    real, fake = folders
    import knnlab.metrics.features.faces as faces

    monkeypatch.setattr(faces, "BUILTIN_FACE_DIR", tmp_path / "no_face_weights")
    code, _, err = _run([str(real), str(fake), "--features", "faces", "--no-cache"], capsys)
    line = _one_line_error(code, err)
    assert "no_face_weights/model.safetensors" in line and "sha256" in line
    assert "knnlab train features" in line
    import knnlab.metrics.features.mnist as mnist

    monkeypatch.setattr(mnist, "BUILTIN_CLASSIFIER_DIR", tmp_path / "no_mnist_weights")
    code, _, err = _run([str(real), str(fake), "--features", "mnist", "--no-cache"], capsys)
    line = _one_line_error(code, err)
    assert "no_mnist_weights/model.safetensors" in line and "sha256 eb638288" in line
    # Inception's published weights, looked up in empty folders
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    code, _, err = _run([str(real), str(fake), "--features", "inception", "--no-cache"], capsys)
    line = _one_line_error(code, err)
    assert "pt_inception-2015-12-05-6726825d.pth" in line and "sha256" in line
    assert "https://github.com/mseitzer/pytorch-fid/releases" in line


def test_named_mnist_weights_checksum() -> None:
    import hashlib

    from knnlab.metrics.features import MNIST_WEIGHTS_SHA256
    from knnlab.metrics.features.mnist import BUILTIN_CLASSIFIER_DIR

    data = (BUILTIN_CLASSIFIER_DIR / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == MNIST_WEIGHTS_SHA256
