"""Real processes: a run killed with SIGKILL and resumed, and a 2-process DDP run (gloo, CPU).

Each test starts fresh Python processes (about 5-10 s each just to import torch here), so they are
marked slow. Every wait has a timeout, so a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("toy_train.py")
TIMEOUT = 240


def _env() -> dict[str, str]:
    env = dict(os.environ, KNNLAB_PROGRESS="0", OMP_NUM_THREADS="1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"process timed out after {TIMEOUT} s:\n{out}")
    assert proc.returncode == 0, out
    return out


def _toy():
    """The toy script as a module, to run it inside this process."""
    spec = importlib.util.spec_from_file_location("toy_train", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


@pytest.mark.slow
def test_sigkill_midway_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    victim = _start(SCRIPT, run_dir, "--noise", "--hang-at", "12")
    _toy().main([str(ref_dir), "--noise"])  # the uninterrupted reference, while the victim starts
    pointer = run_dir / "checkpoints" / "latest"
    deadline = time.monotonic() + TIMEOUT
    while not (pointer.is_file() and pointer.read_text().strip() == "step_0000012"):
        if victim.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{victim.stdout.read()}")
        if time.monotonic() > deadline:
            victim.kill()
            pytest.fail("no checkpoint at step 12 in time")
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (run_dir / "model.safetensors").exists()  # it really died midway

    _finish(_start(SCRIPT, run_dir, "--noise", "--resume"))
    for name in ("model.safetensors", "model_ema.safetensors"):
        a, b = _weights(ref_dir / name), _weights(run_dir / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after the resume"


@pytest.mark.slow
def test_ddp_two_processes_matches_single_process(tmp_path: Path) -> None:
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp = _start(
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        SCRIPT, ddp_dir, "--batch", "8",
    )  # fmt: skip
    # the independent reference: the same script in this process, one rank, same global batch
    _toy().main([str(single_dir), "--batch", "8"])
    out = _finish(ddp)

    r0, r1 = _weights(ddp_dir / "rank0.safetensors"), _weights(ddp_dir / "rank1.safetensors")
    ref = _weights(single_dir / "rank0.safetensors")
    for k in ref:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"
        # same global batch of 8 = 2 x 4: equal up to float summation order in the gradient mean
        torch.testing.assert_close(r0[k], ref[k], rtol=1e-5, atol=1e-6, msg=f"{k} vs 1 process")

    # only rank 0 wrote the run's files, and its log averaged both ranks' losses
    assert (ddp_dir / "model.safetensors").is_file(), out
    ddp_log = (ddp_dir / "log.jsonl").read_text().splitlines()
    single_log = (single_dir / "log.jsonl").read_text().splitlines()
    assert len(ddp_log) == len(single_log) == 12
    for a, b in zip(ddp_log, single_log):
        ra, rb = json.loads(a), json.loads(b)
        assert ra["step"] == rb["step"]
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
