"""The G + D toy (three phases with lazy R1, two EMAs) in real processes: SIGKILL and resume ends
bitwise equal; ``torchrun --nproc_per_node 2`` (gloo) with gradient accumulation equals one process.

Marked slow: each starts fresh Python processes (5-10 s each just to import torch here).
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

SCRIPT = Path(__file__).with_name("toy_gan.py")
TIMEOUT = 240
FILES = ("G.safetensors", "G_ema.safetensors", "D.safetensors", "D_ema.safetensors")


def _env() -> dict[str, str]:
    env = dict(os.environ, KNNLAB_PROGRESS="0", OMP_NUM_THREADS="1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *map(str, args)], env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


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
    spec = importlib.util.spec_from_file_location("toy_gan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gan_toy_sigkill_midway_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    # killed at step 14: the last checkpoint is step 12, a lazy-R1 step (12 % 4 == 0)
    victim = _start(SCRIPT, run_dir, "--noise", "--hang-at", "14")
    _toy().main([str(ref_dir), "--noise"])
    log = run_dir / "log.jsonl"
    deadline = time.monotonic() + TIMEOUT
    while not (log.is_file() and '"step": 14' in log.read_text()):
        if victim.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{victim.stdout.read()}")
        if time.monotonic() > deadline:
            victim.kill()
            pytest.fail("no step 14 in time")
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step_0000012"
    assert not (run_dir / "G.safetensors").exists()

    _finish(_start(SCRIPT, run_dir, "--noise", "--resume"))
    for name in FILES:
        a, b = load_file(str(ref_dir / name)), load_file(str(run_dir / name))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after the resume"
    # the log reads like one run: each step once
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(2, 25, 2))


@pytest.mark.slow
def test_gan_toy_two_processes_with_accumulation_match_one_process(tmp_path: Path) -> None:
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp = _start(
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        SCRIPT, ddp_dir, "--batch", "8", "--accum", "2",
    )  # fmt: skip
    _toy().main([str(single_dir), "--batch", "8"])
    out = _finish(ddp)
    r0 = load_file(str(ddp_dir / "rank0.safetensors"))
    r1 = load_file(str(ddp_dir / "rank1.safetensors"))
    ref = load_file(str(single_dir / "rank0.safetensors"))
    for k in ref:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"
        torch.testing.assert_close(r0[k], ref[k], rtol=1e-5, atol=1e-6, msg=f"{k} vs 1 process")
    for name in ("G_ema.safetensors", "D_ema.safetensors"):
        a, b = load_file(str(ddp_dir / name)), load_file(str(single_dir / name))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{name}:{k}")
    assert (ddp_dir / "G.safetensors").is_file(), out
    la = [json.loads(x) for x in (ddp_dir / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (single_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    for ra, rb in zip(la, lb):
        for key in ("D/loss", "G/loss"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5)
