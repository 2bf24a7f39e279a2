"""The built-in GAN: shapes, truncation, save/load round trip, deterministic training, and the
shipped weights (their samples are digits the shipped classifier recognises)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from knnlab.errors import DataNotFoundError, InputError
from knnlab.hubness.gan import (
    BUILTIN_GAN_DIR,
    Discriminator,
    GANConfig,
    Generator,
    builtin_generator,
    pixel_norm,
)
from knnlab.hubness.train_gan import TrainGANConfig, image_grid, train_gan


def small_config() -> GANConfig:
    return GANConfig(latent_dim=8, w_dim=12, mapping_layers=2, g_channels=8, d_channels=4)


def test_shapes_and_range() -> None:
    g = Generator(small_config()).eval()
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = g(z)
    assert x.shape == (5, 1, 28, 28)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert g.mapping(z).shape == (5, 12)
    assert Discriminator(small_config())(x).shape == (5,)


def test_forward_is_synthesis_of_mapping() -> None:
    g = Generator(small_config()).eval()
    z = torch.randn(4, 8)
    torch.testing.assert_close(g(z), g.synthesis(g.mapping(z)))


def test_truncation_psi_zero_gives_the_mean_image() -> None:
    g = Generator(small_config()).eval()
    g.w_avg.copy_(torch.randn(12))
    x = g(torch.randn(3, 8), truncation_psi=0.0)
    torch.testing.assert_close(x[0], x[1])
    torch.testing.assert_close(x[0:1], g.synthesis(g.w_avg[None]))


def test_bad_latent_shape_names_the_expected_one() -> None:
    with pytest.raises(InputError, match=r"\(B, 8\)"):
        Generator(small_config())(torch.randn(2, 9))


def test_pixel_norm_unit_mean_square() -> None:
    x = torch.randn(6, 10, dtype=torch.float64) * 7
    torch.testing.assert_close(pixel_norm(x).pow(2).mean(1), torch.ones(6, dtype=torch.float64))


def test_save_and_load_round_trip(tmp_path) -> None:
    g = Generator(small_config()).eval()
    g.w_avg.normal_()
    g.save_pretrained(tmp_path / "g")
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    assert cfg["model_type"] == "Generator" and cfg["latent_dim"] == 8
    h = Generator.from_pretrained(tmp_path / "g")
    assert not h.training
    z = torch.randn(3, 8)
    torch.testing.assert_close(g(z), h(z), rtol=0, atol=0)


def test_from_pretrained_errors(tmp_path) -> None:
    with pytest.raises(DataNotFoundError, match=r"config\.json"):
        Generator.from_pretrained(tmp_path)
    Generator(small_config()).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": "other"}))
    with pytest.raises(InputError, match="holds a other, not a Generator"):
        Generator.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        Generator.from_pretrained(tmp_path)


def test_shipped_files_in_the_older_layout_still_load() -> None:
    from knnlab.hubness.gan import BUILTIN_GAN_DIR

    raw = json.loads((BUILTIN_GAN_DIR / "config.json").read_text())
    assert raw.get("model_type", raw.get("model")) in ("Generator", "knnlab.GAN")
    g = Generator.from_pretrained(BUILTIN_GAN_DIR)
    assert g.latent_dim == raw["latent_dim"] and not g.training


def test_training_is_deterministic_and_tracks_w_avg() -> None:
    x = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    cfg = TrainGANConfig(steps=3, batch_size=8, log_every=2)
    g1, _, hist = train_gan(x, cfg, small_config())
    g2, _, _ = train_gan(x, cfg, small_config())
    for (n1, p1), (_, p2) in zip(g1.state_dict().items(), g2.state_dict().items()):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0, msg=n1)
    assert float(g1.w_avg.abs().sum()) > 0
    assert [h["step"] for h in hist] == [2, 3]
    assert not g1.training


def test_image_grid_layout() -> None:
    imgs = torch.rand(5, 1, 4, 4)
    grid = image_grid(imgs, nrow=3, pad=1)
    assert grid.shape == (1, 2 * 5 + 1, 3 * 5 + 1)
    torch.testing.assert_close(grid[:, 1:5, 1:5], imgs[0])
    torch.testing.assert_close(grid[:, 6:10, 6:10], imgs[4])


@pytest.mark.skipif(
    not (BUILTIN_GAN_DIR / "model.safetensors").is_file(), reason="built-in weights not shipped"
)
def test_builtin_generator_makes_recognisable_digits() -> None:
    from knnlab.metrics.features.mnist import builtin_classifier

    g = builtin_generator()
    assert g.latent_dim == 64
    z = torch.randn(256, g.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = (g(z) + 1) / 2
        prob = builtin_classifier()(x).softmax(1)
    confident = (prob.max(1).values > 0.9).float().mean().item()
    classes = prob.argmax(1).unique().numel()
    assert confident > 0.4, confident  # real test digits: about 0.92
    assert classes == 10


def test_train_command_writes_a_loadable_generator(tmp_path, shared_datasets) -> None:
    from knnlab.cli import main

    run = tmp_path / "run"
    args = ["train", "gan", "--steps", "2", "--batch-size", "4", "--out", str(tmp_path)]
    rc = main([*args, "--run-dir", str(run)])
    assert rc == 0
    g = Generator.from_pretrained(tmp_path / "gan")
    assert g.latent_dim == 64
    assert (tmp_path / "gan_samples.png").stat().st_size > 1000
    log = (tmp_path / "gan" / "train_log.jsonl").read_text().splitlines()
    assert json.loads(log[0])["train_config"]["steps"] == 2
