"""``knnlab train denoise`` under ``torchrun --nproc_per_node 2`` (gloo): only rank 0 recalibrates
BatchNorm, saves the model and evaluates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).with_name("denoise_ddp.py")


@pytest.mark.slow
def test_only_rank_zero_recalibrates_saves_and_evaluates(tmp_path: Path) -> None:
    images, out = tmp_path / "images", tmp_path / "run"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(images / f"{i}.png")
    env = dict(os.environ, KNNLAB_PROGRESS="0", OMP_NUM_THREADS="1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
         str(SCRIPT), str(images), str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rank0 = (out / "calls_rank0.txt").read_text().split()
    rank1 = (out / "calls_rank1.txt").read_text().split()
    assert sorted(rank0) == ["evaluate", "recalibrate_batchnorm", "save_pretrained"]
    assert rank1 == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["eval"]["num_images"] == 1
    assert (out / "model" / "config.json").is_file()
