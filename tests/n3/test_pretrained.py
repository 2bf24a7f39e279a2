import hashlib
import http.server
import shutil
import threading
from functools import partial

import pytest
import torch

from knnlab.errors import DataNotFoundError, InputError, KnnlabError
from knnlab.n3 import pretrained as P
from knnlab.n3.pretrained import (
    CheckpointMismatchError,
    convert_official_state_dict,
    load_state_dict_strict,
    official_sigma,
    resolve_official_checkpoint,
)


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/srv; yields (folder, base URL)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No shared weights, an empty cache, downloads allowed."""
    empty = tmp_path / "weights"
    empty.mkdir()
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(empty))
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KNNLAB_OFFLINE", raising=False)
    return tmp_path


def test_official_names():
    assert official_sigma("n3net-official-sigma50") == 50
    assert official_sigma("n3net-official", default_sigma=25) == 25
    assert official_sigma("bm3d") is None and official_sigma("runs/x") is None
    with pytest.raises(InputError, match="sigma25"):
        official_sigma("n3net-official")
    with pytest.raises(InputError, match=r"\[25, 50, 70\]"):
        resolve_official_checkpoint(15)


def test_name_mapping():
    t = torch.zeros(1)
    official = {
        "blocks.0.conv1.weight": t,
        "blocks.0.bn1.running_mean": t,  # built but unused by the released forward: dropped
        "blocks.0.layer1.3.weight": t,
        "blocks.2.conv2.bias": t,
        "nls.1.embedcnn.4.running_var": t,
        "nls.0.tempcnn.6.bias": t,
        "nls.0.n3aggregation.aggregation.nnn.bn.weight": t,
        "nls.0.something.else": t,
    }
    prefixes = {
        "embedcnn.": "embedding.",
        "tempcnn.": "temperature.",
        "n3aggregation.aggregation.nnn.bn.": "aggregation.distance_norm.",
    }
    assert set(convert_official_state_dict(official, prefixes)) == {
        "stages.0.head.weight",
        "stages.0.body.3.weight",
        "stages.2.tail.bias",
        "n3blocks.1.embedding.4.running_var",
        "n3blocks.0.temperature.6.bias",
        "n3blocks.0.aggregation.distance_norm.weight",
        "nls.0.something.else",  # unknown: kept so that strict loading names it
    }


def test_strict_loading_names_every_mismatch():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    good = {k: v.clone() for k, v in net.state_dict().items() if "num_batches" not in k}
    load_state_dict_strict(net, good, source="ok")  # num_batches_tracked filled in
    bad = dict(good)
    bad.pop("0.bias")
    bad["extra"] = torch.zeros(1)
    bad["0.weight"] = torch.zeros(3, 1, 3, 3)
    with pytest.raises(CheckpointMismatchError) as e:
        load_state_dict_strict(net, bad, source="ckpt")
    msg = str(e.value)
    assert "missing ['0.bias']" in msg and "unexpected ['extra']" in msg and "0.weight" in msg


def test_download_verifies_and_caches(isolated, server, monkeypatch):
    root, url = server
    payload = b"not really a checkpoint" * 100
    (root / "25.t7").write_bytes(payload)
    monkeypatch.setattr(P, "OFFICIAL_URL_TEMPLATE", url + "/{sigma}.t7")
    monkeypatch.setitem(P.OFFICIAL_SHA256, 25, hashlib.sha256(payload).hexdigest())
    path = resolve_official_checkpoint(25)
    assert path.read_bytes() == payload
    assert path.parent == isolated / "cache" / "weights" / "n3net-official"
    (root / "25.t7").unlink()  # second call: from the cache, no request
    assert resolve_official_checkpoint(25) == path


def test_download_with_wrong_checksum_keeps_nothing(isolated, server, monkeypatch):
    root, url = server
    (root / "25.t7").write_bytes(b"tampered")
    monkeypatch.setattr(P, "OFFICIAL_URL_TEMPLATE", url + "/{sigma}.t7")
    with pytest.raises(KnnlabError, match="sha256"):
        resolve_official_checkpoint(25)
    assert not any((isolated / "cache" / "weights" / "n3net-official").iterdir())


def test_download_errors_are_clear(isolated, server, monkeypatch):
    _, url = server
    monkeypatch.setattr(P, "OFFICIAL_URL_TEMPLATE", url + "/missing{sigma}.t7")
    with pytest.raises(KnnlabError, match=r"HTTP 404.*by hand"):
        resolve_official_checkpoint(50)
    monkeypatch.setenv("KNNLAB_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="downloads are off"):
        resolve_official_checkpoint(50)


def test_damaged_shared_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "n3net-official").mkdir()
    (tmp_path / "n3net-official" / "gaussian_sigma70.t7").write_bytes(b"x")
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(tmp_path))
    with pytest.raises(InputError, match="sha256"):
        resolve_official_checkpoint(70)


@pytest.mark.data
def test_real_checkpoint_downloads_and_loads(isolated, server, monkeypatch, shared_weights):
    """A copy of the published checkpoint served locally: downloaded, verified, loaded strictly."""
    from knnlab.n3.n3net import N3Net

    root, url = server
    shutil.copy(shared_weights / "n3net-official" / "gaussian_sigma25.t7", root / "c.t7")
    monkeypatch.setattr(P, "OFFICIAL_URL_TEMPLATE", url + "/c.t7?s={sigma}")
    net = N3Net.from_pretrained("n3net-official-sigma25")
    assert not net.training
    official = P.load_official_state_dict(25)
    torch.testing.assert_close(
        net.stages[1].body[4].running_var, official["blocks.1.layer1.4.running_var"]
    )
    torch.testing.assert_close(
        net.n3blocks[1].aggregation.distance_norm.running_mean,
        official["nls.1.n3aggregation.aggregation.nnn.bn.running_mean"],
    )
