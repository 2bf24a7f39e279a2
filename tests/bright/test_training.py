"""BRIGHT training with the GAN term: three phases on the shared MultiTrainer."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from knnlab.bright.training import BrightTrainConfig, _pad_pow2, train_autoencoder
from knnlab.errors import InputError


def _images(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float()


def test_pad_to_a_power_of_two():
    x = torch.ones(2, 1, 28, 28)
    y = _pad_pow2(x)
    assert y.shape == (2, 1, 32, 32) and y[..., :28, :28].eq(1).all() and y.sum() == x.sum()


def test_gan_phases_train_the_discriminator_and_run_r1_lazily(tmp_path):
    cfg = BrightTrainConfig(config="tiny", steps=3, batch_size=4, gan=True, r1_every=2,
                            checkpoint_every=3, log_every=1)  # fmt: skip
    summary = train_autoencoder(cfg, tmp_path / "run", train_images=_images())
    assert summary["steps"] == 3
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logs if "D/d_loss" in r]
    assert len(steps) == 3 and all("G/g_adv" in r and "G/mse" in r for r in steps)
    # R1 is a lazy phase: it runs on steps 0 and 2 (every 2; logged after the step), not on step 1
    assert ["D_r1/r1" in r for r in steps] == [True, False, True]
    d0 = load_file(str(tmp_path / "run" / "D.safetensors"))
    assert any(v.abs().sum() > 0 for v in d0.values())
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_gan_start_holds_the_adversarial_terms_back(tmp_path):
    cfg = BrightTrainConfig(config="tiny", steps=2, batch_size=4, gan=True, gan_start=5,
                            checkpoint_every=2, log_every=1)  # fmt: skip
    train_autoencoder(cfg, tmp_path / "run", train_images=_images())
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    # before gan_start the G loss is reconstruction only
    assert logs and not any("G/g_adv" in r for r in logs)
    with pytest.raises(InputError, match="gan_start"):
        BrightTrainConfig(gan=True, gan_start=-1)
