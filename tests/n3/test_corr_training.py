import json

import pytest

from knnlab.errors import InputError
from knnlab.n3.cnnet import CNNet
from knnlab.n3.corr_training import CorrTrainConfig, train_corr


@pytest.mark.slow
def test_short_run_switches_on_the_essential_loss_and_saves(tmp_path):
    cfg = CorrTrainConfig(
        model="cnnet", budget_steps=4, batch_size=2, num_matches=32, essential_after=2,
        val_pairs=0, checkpoint_every=100,
    )  # fmt: skip
    summary = train_corr(cfg, tmp_path / "run")
    assert summary["steps"] == 4
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [("essential" in r) for r in logs] == [False, False, True, True]
    for r in logs[2:]:
        assert r["loss"] == pytest.approx(r["classif"] + 0.1 * r["essential"], rel=1e-5)
    net = CNNet.from_pretrained(tmp_path / "run" / "model")
    assert net.config.depth == 12


def test_default_essential_start():
    assert CorrTrainConfig().essential_start == 20_000
    assert CorrTrainConfig(budget_steps=500).essential_start == 250
    with pytest.raises(InputError, match="--model"):
        CorrTrainConfig(model="resnet")


def test_weights_depend_on_the_seed_only(tmp_path):
    # torch seeds its global generator randomly at start-up; a run must not inherit that state
    import torch
    from safetensors.torch import load_file

    cfg = CorrTrainConfig(
        model="cnnet", budget_steps=1, batch_size=2, num_matches=16, essential_after=5,
        val_pairs=0, checkpoint_every=100,
    )  # fmt: skip
    weights = []
    for i, state in enumerate((1, 2)):
        torch.manual_seed(state)  # a different global state before each run
        train_corr(cfg, tmp_path / f"run{i}")
        weights.append(load_file(str(tmp_path / f"run{i}" / "model" / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
