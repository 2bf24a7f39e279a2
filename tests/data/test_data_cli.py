"""`knnlab data list` and the CLI's one-line errors (downloads: see test_download.py)."""

from __future__ import annotations

import numpy as np
import torch

from knnlab.cli import main
from knnlab.data import write_image


def test_data_list(tmp_path, monkeypatch, capsys):
    (tmp_path / "Set12").mkdir()
    for i in range(2):
        write_image(tmp_path / "Set12" / f"{i}.png", torch.rand(1, 4, 4))
    (tmp_path / "MNIST").mkdir()
    np.savez(tmp_path / "MNIST" / "mnist.npz", x_train=np.zeros((3, 28, 28), np.uint8),
             y_train=np.zeros(3), x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1))  # fmt: skip
    monkeypatch.setenv("KNNLAB_DATA", str(tmp_path))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_path}" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "present" in lines["Set12"] and "2 images" in lines["Set12"]
    assert "3 train + 1 test" in lines["MNIST"]
    assert "missing" in lines["BSD68"]
    assert "DIV2K" in out


def test_data_list_without_root(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KNNLAB_DATA", raising=False)
    monkeypatch.setattr("knnlab.paths._candidates", lambda sub: [tmp_path / "absent"])
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "not found (set $KNNLAB_DATA" in out and "missing" in out


def test_data_download_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KNNLAB_DATA", raising=False)
    monkeypatch.setenv("KNNLAB_CACHE", str(tmp_path / "cache"))
    assert main(["data", "download", "NoSuchSet"]) == 2  # default root: the cache
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "choose from" in err and err.count("\n") == 1
    assert not (tmp_path / "cache" / "datasets" / "NoSuchSet").exists()
    assert main(["data", "download", "NoSuchSet", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "choose from" in err and "Traceback" not in err
