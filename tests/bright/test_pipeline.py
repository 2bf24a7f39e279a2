"""KeyCodeDiffusionPipeline: save/load round trip, and a tiny LDM that overfits a few codes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from knnlab.bright.ldm import (
    LDMConfig,
    code_map_for,
    encode_codes,
    make_scheduler,
    make_unet,
    train_ldm,
)
from knnlab.bright.pipeline import KeyCodeDiffusionPipeline, register_autoencoder
from knnlab.errors import InputError
from knnlab.hub import PretrainedMixin


@dataclass
class PoolConfig:
    factor: int = 2


@register_autoencoder
class PoolAutoencoder(PretrainedMixin, nn.Module):
    """A stand-in: codes are the sigmoid of an average pool, decoding is its inverse upsampled."""

    config_class = PoolConfig

    def __init__(self, config: PoolConfig | None = None) -> None:
        super().__init__()
        self.config = config or PoolConfig()
        self.gain = nn.Parameter(torch.ones(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(4 * (F.avg_pool2d(x, self.config.factor) - 0.5) * self.gain)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.logit(z.clamp(1e-4, 1 - 1e-4)) / 4 + 0.5
        return F.interpolate(
            x.mean(1, keepdim=True), scale_factor=self.config.factor, mode="nearest"
        )


def _pipeline() -> KeyCodeDiffusionPipeline:
    torch.manual_seed(0)
    return KeyCodeDiffusionPipeline(
        make_unet("tiny", 2, 8), make_scheduler("cosine_variant", 100, clip_range=1.0), PoolAutoencoder(),
        code_map_for("keys", shape=(2, 8, 8)),
    )  # fmt: skip


def test_round_trip_through_save_and_load(tmp_path):
    pipe = _pipeline()
    x_t = pipe.initial_noise(3, torch.Generator().manual_seed(1))
    before = pipe(3, num_inference_steps=5, latents=x_t)
    assert before.shape == (3, 1, 16, 16) and before.min() >= 0 and before.max() <= 1
    pipe.save_pretrained(tmp_path / "p")
    back = KeyCodeDiffusionPipeline.from_pretrained(tmp_path / "p")
    assert type(back.scheduler).__name__ == "DDIMScheduler"
    torch.testing.assert_close(
        back(3, num_inference_steps=5, latents=x_t), before, rtol=0, atol=1e-6
    )
    # DDIM with eta = 0 is deterministic given x_T; the seed path gives the same x_T
    again = back(3, num_inference_steps=5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(again, before, rtol=0, atol=1e-6)


def test_bad_arguments_are_clear(tmp_path):
    pipe = _pipeline()
    with pytest.raises(InputError, match="cannot be larger than the 100 training steps"):
        pipe(1, num_inference_steps=500)
    with pytest.raises(InputError, match="expected"):
        pipe(2, latents=torch.zeros(2, 3, 8, 8))
    with pytest.raises(Exception, match=r"pipeline\.json"):
        KeyCodeDiffusionPipeline.from_pretrained(tmp_path)


@pytest.mark.slow
def test_tiny_ldm_overfits_a_handful_of_codes(tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(4, 2, 16, 16, generator=g) > 0.5).float() * 0.8 + 0.1
    ae = PoolAutoencoder()
    codes = encode_codes(ae, images)  # (4, 2, 8, 8) in (0, 1)
    cfg = LDMConfig(unet="tiny", steps=400, batch_size=4, lr=1e-3, ema_decay=None,
                    out_dir=str(tmp_path / "run"), device="cpu", checkpoint_every=None,
                    log_every=100)  # fmt: skip
    pipe = train_ldm(codes, ae, code_map_for("keys", shape=(2, 8, 8)), cfg)
    samples = pipe.sample_codes(
        8, num_inference_steps=20, generator=torch.Generator().manual_seed(3)
    )
    # the nearest training code of each sample is much closer than for fresh random codes
    d_samples = torch.cdist(samples.flatten(1), codes.flatten(1)).min(1).values
    random = torch.rand(8, 2, 8, 8, generator=g)
    d_random = torch.cdist(random.flatten(1), codes.flatten(1)).min(1).values
    assert d_samples.max() < 0.5 * d_random.min(), (d_samples, d_random)
    assert (tmp_path / "run" / "log.jsonl").is_file()


def test_sample_command_random_and_hubs(tmp_path, capsys):
    from PIL import Image

    from knnlab.cli import main

    _pipeline().save_pretrained(tmp_path / "p")
    out = tmp_path / "grid.png"
    assert main(["sample", "bright", "--model", str(tmp_path / "p"), "-n", "4", "-o", str(out),
                 "--steps", "3", "--nrow", "2"]) == 0  # fmt: skip
    side = (2 * (16 + 2) + 2) * 2  # two 16-px images a row, 2-px padding, then scaled x2
    assert Image.open(out).size == (side, side)
    assert main(["sample", "bright", "--model", str(tmp_path / "p"), "-n", "2", "-o", str(out),
                 "--steps", "2", "--hubs", "3", "--pool-size", "200"]) == 0  # fmt: skip
    assert "hub x_T" in capsys.readouterr().out
    for args in (["--model", str(tmp_path / "nope")], ["--model", str(tmp_path / "p"), "-n", "0"]):
        assert main(["sample", "bright", *args, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1


def test_hub_initial_noise_are_hubs_of_their_pool():
    import numpy as np

    from knnlab.bright.sample import hub_initial_noise, scaled_initial_noise

    pipe = _pipeline()
    x, stats = hub_initial_noise(pipe, 5, threshold=4, k=3, pool_size=300, seed=0)
    assert x.shape == (5, 2, 8, 8) and stats["hubs_found"] >= 5
    # independent check: each returned x_T occurs >= 4 times in the 3-NN lists of its pool, which
    # the sampler drew from N(0, I) with the generator seeded by `seed` (pool 0 holds them)
    pool = (
        torch.randn(300, 128, generator=torch.Generator().manual_seed(0)).numpy().astype(np.float64)
    )
    d = ((pool[:, None] - pool[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    knn = np.argsort(d, axis=1, kind="stable")[:, :3]
    kocc = np.bincount(knn.ravel(), minlength=300)
    for row in x.reshape(5, -1).numpy():
        i = int(np.argmin(((pool - row) ** 2).sum(1)))
        assert np.allclose(pool[i], row, atol=1e-6) and kocc[i] >= 4
    assert torch.allclose(scaled_initial_noise(pipe, 2, psi=0.5, seed=1),
                          0.5 * pipe.initial_noise(2, torch.Generator().manual_seed(1)))  # fmt: skip
