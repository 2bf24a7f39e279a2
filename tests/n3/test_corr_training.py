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
