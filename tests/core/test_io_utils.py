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


def test_atomic_dir_replaces_an_earlier_run_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "stale.txt").write_text("from run 1")
        (tmp / "a.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        (tmp / "d").mkdir()
        (tmp / "d" / "b.txt").write_text("b")
    assert (out / "a.txt").read_text() == "new"
    assert not (out / "stale.txt").exists()  # exactly one run's files
    assert (out / "d" / "b.txt").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_refuses_a_folder_it_did_not_write(tmp_path):
    from knnlab.errors import InputError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="did not write"), atomic_dir(out):
        pass
    assert (out / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as tmp:
        (tmp / "x").write_text("x")
    assert (empty / "x").exists()


def test_atomic_dir_removes_partials_of_killed_runs(tmp_path):
    import subprocess
    import sys

    # a run killed with SIGKILL halfway leaves its .partial folder behind
    code = (
        "import os, signal, sys; from knnlab.io_utils import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as t:\n"
        "    (t / 'half').write_text('x'); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], check=False)
    assert any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".knnlab-run", "done"]


def test_atomic_dir_unwritable_parent_is_one_input_error(tmp_path):
    from knnlab.errors import InputError

    with pytest.raises(InputError, match="cannot write"), atomic_dir("/proc/knnlab-out"):
        pass


def test_atomic_write_uses_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644
