"""The GAN recipe on the shared loop: resume equals an uninterrupted run, 64x64 RGB with lazy R1,
the CelebA crop, and (slow) ``knnlab train gan`` under torchrun with 2 gloo processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from knnlab.errors import InputError
from knnlab.hubness.gan import CELEBA64_GAN_DIR, GANConfig, Generator
from knnlab.hubness.train_gan import TrainGANConfig, celeba64_transform, recipe, train_gan


def small(**kw) -> GANConfig:
    return GANConfig(latent_dim=8, w_dim=12, mapping_layers=2, g_channels=16, d_channels=4, **kw)


def _digits(n: int = 48) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    cfg = TrainGANConfig(steps=6, batch_size=8, log_every=1, checkpoint_every=2, r1_gamma=1.0,
                         r1_every=4, ema_decay=0.9)  # fmt: skip
    g_ref, d_ref, hist_ref = train_gan(_digits(), cfg, small(), run_dir=tmp_path / "ref")
    short = TrainGANConfig(**{**cfg.__dict__, "steps": 4})
    train_gan(_digits(), short, small(), run_dir=tmp_path / "run")
    g, d, hist = train_gan(_digits(), cfg, small(), run_dir=tmp_path / "run", resume=True)
    for a, b in ((g_ref, g), (d_ref, d)):
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(v, w), k
    assert [h["step"] for h in hist] == [1, 2, 3, 4, 5, 6]
    assert [h["loss_d"] for h in hist] == [h["loss_d"] for h in hist_ref]
    assert "loss_r1" in hist[0] and "loss_r1" in hist[4] and "loss_r1" not in hist[1]


def test_64x64_rgb_gan_trains_with_lazy_r1() -> None:
    x = np.random.default_rng(1).integers(0, 256, (16, 3, 64, 64), dtype=np.uint8)
    cfg = TrainGANConfig(steps=2, batch_size=4, log_every=1, r1_gamma=0.1)
    g, d, hist = train_gan(x, cfg, small(image_size=64, image_channels=3))
    assert g(torch.randn(2, 8)).shape == (2, 3, 64, 64)
    assert d(torch.zeros(2, 3, 64, 64)).shape == (2,)
    assert hist[0]["loss_r1"] > 0 and "loss_r1" not in hist[1]
    with pytest.raises(InputError, match="64, 64"):
        train_gan(_digits(), cfg, small(image_size=64, image_channels=3))


def test_celeba_transform_keeps_the_centre_square() -> None:
    a = np.zeros((218, 178, 3), dtype=np.uint8)
    a[:, :] = (200, 0, 0)  # red outside the centre square
    a[20:198, :] = (10, 20, 240)  # rows 20..197: the centre 178x178 square, blue
    out = celeba64_transform(Image.fromarray(a))
    assert out.shape == (3, 64, 64) and out.dtype == np.uint8
    assert (out[:, :, :] == np.array([10, 20, 240])[:, None, None]).all()


def test_recipes() -> None:
    cfg, g = recipe("celeba64")
    assert (g.image_size, g.image_channels, cfg.r1_gamma) == (64, 3, 0.1)
    assert recipe("mnist")[0] == TrainGANConfig()
    with pytest.raises(InputError, match="recipe"):
        recipe("cifar")


@pytest.mark.skipif(
    not (CELEBA64_GAN_DIR / "model.safetensors").is_file(), reason="face GAN not shipped"
)
def test_shipped_celeba64_generator_loads_by_name() -> None:
    from knnlab.hubness.generators import load_generator

    ad = load_generator("celeba64")
    assert ad.latent_dim == 128 and ad.has_w
    x = ad.generate(torch.randn(4, 128, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (4, 3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert float(x.std()) > 0.05  # not a constant image
    assert isinstance(Generator.from_pretrained(CELEBA64_GAN_DIR), Generator)


@pytest.mark.slow
def test_train_gan_command_under_torchrun_two_processes(tmp_path: Path, shared_datasets) -> None:
    env = dict(os.environ, KNNLAB_PROGRESS="0", OMP_NUM_THREADS="1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "knnlab", "train", "gan", "--steps", "3", "--batch-size", "8",
           "--out", str(tmp_path / "out"), "--run-dir", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("GAN: 3 steps") == 1  # rank 0 reports
    assert Generator.from_pretrained(tmp_path / "out" / "gan").latent_dim == 64
    state = json.loads(
        (tmp_path / "run" / "checkpoints" / "step_0000003" / "state.json").read_text()
    )
    assert state["extra"]["world_size"] == 2
