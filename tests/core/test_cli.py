import subprocess
import sys

import pytest
import torch

from knnlab.cli import main
from knnlab.devices import resolve_device
from knnlab.errors import InputError


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "denoise", "train", "eval", "experiment", "data"):
        assert cmd in out


def test_usage_error_is_nonzero(capsys):
    assert main(["no-such-command"]) != 0
    assert "No such command" in capsys.readouterr().err


def test_unknown_demo_section_is_one_line_error(tmp_path, capsys):
    code = main(["demo", "--only", "nope", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_entry_point_exits_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "knnlab", "demo", "--only", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(InputError, match="--device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
