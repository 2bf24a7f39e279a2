"""download / fetch_dataset against an HTTP server on 127.0.0.1 started by the test (never the
real network): good checksum, bad checksum, 404, truncated transfer and resume, archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from knnlab.data import load_images, load_mnist, write_image
from knnlab.data.download import SOURCES, DownloadError, Source, download, fetch_dataset

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    truncate: ClassVar[dict[str, int]] = {}  # path -> bytes actually sent before closing
    ranges = True
    log: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.log.append((self.path, self.headers.get("Range")))
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.truncate.get(self.path)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    _Handler.files, _Handler.truncate, _Handler.log, _Handler.ranges = {}, {}, [], True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_good_checksum(server, tmp_path):
    base, h = server
    h.files["/f.bin"] = PAYLOAD
    out = download(f"{base}/f.bin", tmp_path / "f.bin", sha256=_sha(PAYLOAD), progress=False)
    assert out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    # present and matching: no second request
    n = len(h.log)
    download(f"{base}/f.bin", out, sha256=_sha(PAYLOAD), progress=False)
    assert len(h.log) == n


def test_bad_checksum_leaves_nothing(server, tmp_path):
    base, h = server
    h.files["/f.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_404(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base}/missing.zip", tmp_path / "m.zip", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach"):
        download("http://127.0.0.1:9/x", tmp_path / "x", progress=False, timeout=5)


@pytest.mark.parametrize("ranges", [True, False])
def test_truncated_transfer_then_resume(server, tmp_path, ranges):
    base, h = server
    h.files["/f.bin"] = PAYLOAD
    h.truncate["/f.bin"] = 300_000
    h.ranges = ranges
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=r"incomplete|interrupted"):
        download(f"{base}/f.bin", dest, sha256=_sha(PAYLOAD), progress=False)
    assert not dest.exists()
    del h.truncate["/f.bin"]
    download(f"{base}/f.bin", dest, sha256=_sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert h.log[-1][1] == "bytes=300000-"  # it asked to resume
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


@pytest.fixture(autouse=True)
def toy_manifests(tmp_path_factory, monkeypatch):
    """The toy archives here are not the published sets: verify them against toy manifests."""
    from knnlab.data import manifest

    folder = tmp_path_factory.mktemp("manifests")
    monkeypatch.setattr(manifest, "MANIFEST_DIR", folder)
    return folder


def _toy_manifest(folder, name: str, files: dict[str, bytes]) -> None:
    lines = [f"{hashlib.sha256(b).hexdigest()}  {rel}" for rel, b in files.items()]
    (folder / f"{name}.sha256").write_text("\n".join(lines) + "\n")


def _png_bytes(i: int) -> bytes:
    png = io.BytesIO()
    Image.fromarray(np.full((6, 7), 40 * i, dtype=np.uint8)).save(png, format="PNG")
    return png.getvalue()


def test_download_whose_files_differ_from_the_manifest_is_refused(server, tmp_path, toy_manifests):
    base, h = server
    h.files["/dncnn.zip"] = _zip_with_images("DnCNN-abc")
    src = Source("Set12", f"{base}/dncnn.zip", "dncnn.zip", None, "zip", "testsets/Set12", "")
    # the manifest wants other bytes for 01.png (an upstream change GitHub's archive would not show)
    _toy_manifest(toy_manifests, "Set12", {"00.png": _png_bytes(0), "01.png": b"other"})
    with pytest.raises(DownloadError, match=r"1 differ \(01\.png\)"):
        fetch_dataset("Set12", tmp_path / "d", sources={"Set12": src}, downloads=tmp_path / "c",
                      progress=False)  # fmt: skip
    assert not (tmp_path / "d" / "Set12").exists()
    assert [p.name for p in (tmp_path / "d").iterdir()] == []  # no partial folder either
    _toy_manifest(toy_manifests, "Set12", {"00.png": _png_bytes(0), "01.png": _png_bytes(1)})
    out = fetch_dataset("Set12", tmp_path / "d", sources={"Set12": src}, downloads=tmp_path / "c",
                        progress=False)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["00.png", "01.png"]


def _zip_with_images(prefix: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(2):
            png = io.BytesIO()
            Image.fromarray(np.full((6, 7), 40 * i, dtype=np.uint8)).save(png, format="PNG")
            z.writestr(f"{prefix}/testsets/Set12/{i:02d}.png", png.getvalue())
        z.writestr(f"{prefix}/README.md", "hello")
    return buf.getvalue()


def test_fetch_dataset_zip_and_plain_file(server, tmp_path, monkeypatch, toy_manifests):
    base, h = server
    _toy_manifest(toy_manifests, "Set12", {"00.png": _png_bytes(0), "01.png": _png_bytes(1)})
    archive = _zip_with_images("DnCNN-abc")
    h.files["/dncnn.zip"] = archive
    npz = io.BytesIO()
    np.savez(
        npz,
        x_train=np.zeros((2, 28, 28), np.uint8),
        y_train=np.zeros(2, np.uint8),
        x_test=np.zeros((1, 28, 28), np.uint8),
        y_test=np.zeros(1, np.uint8),
    )
    h.files["/mnist.npz"] = npz.getvalue()
    sources = {
        "Set12": Source(
            "Set12", f"{base}/dncnn.zip", "dncnn.zip", _sha(archive), "zip", "testsets/Set12", ""
        ),
        "MNIST": Source("MNIST", f"{base}/mnist.npz", "mnist.npz", None, None, None, ""),
    }
    root, cache = tmp_path / "data", tmp_path / "cache"
    out = fetch_dataset("set12", root, sources=sources, downloads=cache, progress=False)
    assert out == root / "Set12" and sorted(p.name for p in out.iterdir()) == ["00.png", "01.png"]
    fetch_dataset("MNIST", root, sources=sources, downloads=cache, progress=False)
    assert (root / "MNIST" / "mnist.npz").read_bytes() == npz.getvalue()
    assert sorted(p.name for p in root.iterdir()) == ["MNIST", "Set12"]  # no temp folders left

    monkeypatch.setenv("KNNLAB_DATA", str(root))
    assert len(load_images("Set12")) == 2
    assert load_mnist("test")[0].shape == (1, 28, 28)


def test_fetch_dataset_tar_and_bad_checksum(server, tmp_path):
    base, h = server
    img_dir = tmp_path / "src" / "BSR" / "BSDS500" / "data" / "images" / "train"
    img_dir.mkdir(parents=True)
    write_image(img_dir / "a.jpg", torch.rand(3, 8, 8))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(tmp_path / "src" / "BSR", arcname="BSR")
    h.files["/bsds.tgz"] = buf.getvalue()
    src = Source(
        "BSDS500", f"{base}/bsds.tgz", "bsds.tgz", None, "tar", "BSR/BSDS500/data/images", ""
    )
    root = tmp_path / "data"
    out = fetch_dataset(
        "BSDS500", root, sources={"BSDS500": src}, downloads=tmp_path / "c", progress=False
    )
    assert (out / "train" / "a.jpg").is_file()
    bad = Source("Set5", f"{base}/bsds.tgz", "other.tgz", "1" * 64, "tar", "x", "")
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_dataset("Set5", root, sources={"Set5": bad}, downloads=tmp_path / "c", progress=False)
    assert not (root / "Set5").exists()
    assert sorted(p.name for p in root.iterdir()) == ["BSDS500"]


def test_registry_covers_named_datasets():
    from knnlab.data import DATASETS

    for name in (*DATASETS, "BSDS500", "DIV2K", "Urban100"):
        assert name in SOURCES and SOURCES[name].url.startswith("http")
    with pytest.raises(Exception, match="choose from"):
        fetch_dataset("nope", "/tmp/unused")


def test_cli_download(server, tmp_path, monkeypatch, capsys, toy_manifests):
    from knnlab.cli import main
    from knnlab.data import download as dl

    base, h = server
    _toy_manifest(toy_manifests, "Set12", {"00.png": _png_bytes(0), "01.png": _png_bytes(1)})
    archive = _zip_with_images("DnCNN-abc")
    h.files["/dncnn.zip"] = archive
    src = Source("Set12", f"{base}/dncnn.zip", "dncnn.zip", None, "zip", "testsets/Set12", "")
    monkeypatch.setitem(dl.SOURCES, "Set12", src)
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    assert main(["data", "download", "set12", "--root", str(tmp_path / "d"), "--no-progress"]) == 0
    assert "Set12" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "Set12").iterdir())) == 2
    h.files.clear()
    monkeypatch.setitem(
        dl.SOURCES, "Set14", Source("Set14", f"{base}/gone.zip", "gone.zip", None, "zip", "x", "")
    )
    assert main(["data", "download", "Set14", "--root", str(tmp_path / "d"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and err.count("\n") == 1
