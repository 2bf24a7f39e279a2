import json

import pytest
import torch

from knnlab.data import write_image
from knnlab.errors import InputError
from knnlab.n3.sr_data import SRPatchDataset, load_y_images
from knnlab.n3.sr_training import SRTrainConfig, train_sr
from knnlab.n3.superres import load_sr_model


def _sharp_images(folder, n=4):
    """Piecewise-constant images (random rectangles): bicubic blurs their edges, so there is a lot
    to learn quickly."""
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        img = torch.full((1, 48, 48), 0.5)
        for _ in range(12):
            y0, x0 = torch.randint(0, 40, (2,), generator=g).tolist()
            h, w = torch.randint(4, 16, (2,), generator=g).tolist()
            img[:, y0 : y0 + h, x0 : x0 + w] = torch.rand(1, generator=g).item()
        write_image(folder / f"{i}.png", img)


def test_a_few_steps_learn(tmp_path):
    torch.manual_seed(0)
    _sharp_images(tmp_path / "data")
    cfg = SRTrainConfig(
        model="vdsr", scales=(2, 3), datasets=(str(tmp_path / "data"),), patch_size=24,
        batch_size=8, steps=80, lr=3e-3, eval_dataset=None, checkpoint_every=1000,
        model_kwargs={"depth": 4, "features": 16},
    )  # fmt: skip
    summary = train_sr(cfg, tmp_path / "run", device="cpu")
    assert summary["steps"] == 80
    model = load_sr_model(tmp_path / "run")  # the run folder's model/
    images, _ = load_y_images([tmp_path / "data"])
    held = SRPatchDataset(images, 24, scales=(2, 3), length=8, seed=99)
    x = torch.cat([held[i][0] for i in range(8)])
    y = torch.cat([held[i][1] for i in range(8)])
    with torch.no_grad():
        mse_model = (model(x) - y).pow(2).mean()
    mse_bicubic = (x - y).pow(2).mean()  # where the model started (identity init)
    assert float(mse_model) < 0.95 * float(mse_bicubic)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]


def test_bad_configs():
    with pytest.raises(InputError, match="--batch-size 4"):
        SRTrainConfig(batch_size=4)  # not a multiple of 3 scales
    with pytest.raises(InputError, match="--model 'srcnn'"):
        SRTrainConfig(model="srcnn")
    with pytest.raises(InputError, match="--patch-size 40"):
        SRTrainConfig(model="n3net", patch_size=40)
    with pytest.raises(InputError, match="--budget-steps 0"):
        SRTrainConfig(budget_steps=0)
    with pytest.raises(InputError, match="--budget-minutes 0"):
        SRTrainConfig(budget_minutes=0)


def test_time_budget_sets_the_steps_and_resume_keeps_them(tmp_path, monkeypatch):
    import knnlab.n3.sr_training as sr_training

    _sharp_images(tmp_path / "data")
    # a machine on which a step takes 1.5 s: 0.5 min · 0.97 / 1.5 s -> 19 steps
    monkeypatch.setattr(sr_training, "probe_step_seconds", lambda *a, **k: 1.5)
    cfg = SRTrainConfig(
        model="vdsr", scales=(2,), datasets=(str(tmp_path / "data"),), patch_size=24,
        batch_size=2, budget_minutes=0.5, eval_dataset=None, checkpoint_every=5,
        model_kwargs={"depth": 2, "features": 4},
    )  # fmt: skip
    summary = train_sr(cfg, tmp_path / "run", device="cpu")
    assert summary["steps"] == 19
    assert summary["config"]["budget_steps"] == 19
    assert summary["config"]["budget_minutes"] == 0.5
    saved = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert saved["steps"] == 19 and saved["seconds_per_step"] == 1.5
    # a resumed run reads the saved count instead of measuring again
    monkeypatch.setattr(sr_training, "probe_step_seconds", lambda *a, **k: 100.0)
    assert train_sr(cfg, tmp_path / "run", resume=True, device="cpu")["steps"] == 19


def test_probe_step_seconds_leaves_the_model_and_rng_alone():
    from knnlab.n3.sr_training import build_sr_model, probe_step_seconds

    net = build_sr_model("vdsr", depth=3, features=4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 1, 16, 16)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    sec = probe_step_seconds(net, [(x, x)] * 3)
    assert sec > 0
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(InputError, match="two batches"):
        probe_step_seconds(net, [(x, x)])
