"""knnlab.hub: the weights registry, verification of local files, and PretrainedMixin."""

import hashlib
import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from knnlab.errors import DataNotFoundError, InputError
from knnlab.hub import WEIGHTS, PretrainedMixin, WeightsEntry, resolve_weights, weights_entry


def _entry(payload: bytes, url: str = "http://127.0.0.1:9/none") -> WeightsEntry:
    return WeightsEntry("toy", "toy.bin", "toy", url, hashlib.sha256(payload).hexdigest(), "MIT")


@pytest.fixture
def roots(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KNNLAB_OFFLINE", "1")
    return tmp_path


def test_registry_has_every_published_file_with_a_full_digest():
    weights_entry("fid-inception-v3")  # loads the registering modules
    for name in ("n3net-official-sigma25", "n3net-official-sigma50", "n3net-official-sigma70",
                 "fid-inception-v3", "vgg16"):  # fmt: skip
        e = WEIGHTS[name]
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0
        assert e.url.startswith("https://") and e.licence
    # the torch.hub convention: the published name carries the digest's first 8 hex digits
    assert WEIGHTS["vgg16"].sha256.startswith("397923af")
    assert WEIGHTS["fid-inception-v3"].sha256.startswith("6726825d")
    with pytest.raises(InputError, match="known:"):
        weights_entry("nope")


def test_local_file_is_verified_in_full(roots):
    entry = _entry(b"good weights")
    (roots / "w" / "toy").mkdir()
    local = roots / "w" / "toy" / "toy.bin"
    local.write_bytes(b"good weights")
    assert resolve_weights(entry) == local
    local.write_bytes(b"good weightz")  # same size, one byte off
    with pytest.raises(InputError, match=entry.sha256):
        resolve_weights(entry)


def test_missing_offline_error_names_file_digest_and_url(roots):
    entry = _entry(b"x", url="https://example.org/toy.bin")
    with pytest.raises(DataNotFoundError) as e:
        resolve_weights(entry)
    msg = str(e.value)
    assert "toy.bin" in msg and entry.sha256 in msg and "https://example.org/toy.bin" in msg
    assert "\n" not in msg


def test_shared_checkpoint_resolves_and_verifies(shared_weights, monkeypatch):
    monkeypatch.setenv("KNNLAB_WEIGHTS", str(shared_weights))
    path = resolve_weights("n3net-official-sigma25", download=False)
    # independent digest of ../shared/README.md's published list
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "ca3ceea2f9f11cf685a14c0444aeeb3f0841b68deb665133b22c5e9eacf37ff4"
    )


@dataclass
class _Cfg:
    width: int = 3


class _Net(PretrainedMixin, nn.Module):
    config_class = _Cfg

    def __init__(self, config: _Cfg | None = None) -> None:
        super().__init__()
        self.config = config or _Cfg()
        if self.config.width < 1:
            raise ValueError("width must be >= 1")
        self.lin = nn.Linear(self.config.width, 2)


def test_pretrained_round_trip_and_config_errors(tmp_path):
    net = _Net(_Cfg(width=4))
    net.save_pretrained(tmp_path / "n")
    raw = json.loads((tmp_path / "n" / "config.json").read_text())
    assert raw == {"model_type": "_Net", "width": 4}
    back = _Net.from_pretrained(tmp_path / "n")
    assert not back.training
    torch.testing.assert_close(back.lin.weight, net.lin.weight, rtol=0, atol=0)
    (tmp_path / "n" / "config.json").write_text(json.dumps({"width": 0}))
    with pytest.raises(InputError, match="not a valid _Net"):
        _Net.from_pretrained(tmp_path / "n")
    (tmp_path / "n" / "config.json").write_text(json.dumps({"width": 4, "depth": 2}))
    with pytest.raises(InputError, match="unknown _Cfg fields"):
        _Net.from_pretrained(tmp_path / "n")
    (tmp_path / "n" / "config.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        _Net.from_pretrained(tmp_path / "n")
