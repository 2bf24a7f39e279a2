import json

import numpy as np
import pytest

from knnlab.io_utils import atomic_dir, atomic_write_json, atomic_write_text


def test_atomic_write_json_roundtrip_and_numpy(tmp_path):
    path = tmp_path / "sub" / "r.json"
    atomic_write_json(path, {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp files left


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "t.txt"
    atomic_write_text(path, "old content that is longer")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.html").write_text("half")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_moves_files_and_keeps_others(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    (out / "a.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        (tmp / "d").mkdir()
        (tmp / "d" / "b.txt").write_text("b")
    assert (out / "a.txt").read_text() == "new"
    assert (out / "keep.txt").read_text() == "keep"
    assert (out / "d" / "b.txt").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_write_uses_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644
