"""A short real-noise training run learns: DnCNN-real beats its own (identity) start on held-out crops."""

from __future__ import annotations

import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3.denoise import load_model
from knnlab.n3.real.noise import real_noise_batch
from knnlab.n3.real.training import RealTrainConfig, train_real_denoiser


def _gain_db(model: torch.nn.Module, inputs: torch.Tensor, clean: torch.Tensor) -> float:
    with torch.no_grad():
        out = model(inputs)
    mse_out = float((out - clean).pow(2).mean())
    mse_in = float((inputs[:, :1] - clean).pow(2).mean())
    return 10.0 * torch.log10(torch.tensor(mse_in / mse_out)).item()


@pytest.mark.slow
def test_few_steps_learn(shared_datasets, tmp_path) -> None:
    torch.manual_seed(0)
    cfg = RealTrainConfig(model="dncnn", datasets=("Set12",), patch_size=48, batch_size=8,
                          steps=40, bn_batches=2, checkpoint_every=40, lr=2e-3)  # fmt: skip
    summary = train_real_denoiser(cfg, tmp_path / "run", resume=False)
    assert summary["steps"] == 40
    model = load_model(tmp_path / "run").eval()
    # held-out crops: BSD68 (not trained on), the same noise recipe with a fixed generator
    from knnlab.data import PatchDataset

    data = PatchDataset("BSD68", 48, length=32, seed=123, channels=3)
    crops = torch.stack([data[i] for i in range(32)])
    inputs, clean = real_noise_batch(crops, generator=torch.Generator().manual_seed(9))
    # the run starts as the identity (gain 0 dB); after 40 steps it removes noise
    assert _gain_db(model, inputs, clean) > 0.5


def test_config_errors() -> None:
    with pytest.raises(InputError, match="--model 'unet'"):
        RealTrainConfig(model="unet")
    with pytest.raises(InputError, match="--patch-size 40"):
        RealTrainConfig(model="n3net", patch_size=40)
    with pytest.raises(InputError, match="--steps 0"):
        RealTrainConfig(steps=0)
