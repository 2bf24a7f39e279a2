"""``knnlab experiment sr`` finds finished training runs by their settings, time budgets included."""

from __future__ import annotations

import json
from dataclasses import asdict

from knnlab.n3.sr_experiment import SRExperimentConfig, _finished_run


def _fake_run(folder, cfg, steps):
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.safetensors").write_bytes(b"x")
    (folder / "summary.json").write_text(json.dumps({"config": cfg, "steps": steps}))


def test_a_time_budget_run_is_found_by_its_minutes(tmp_path) -> None:
    exp = SRExperimentConfig(budget_minutes=60.0, parallel=True)
    want = exp.train_config("n3net")
    saved = asdict(want)
    saved["budget_steps"] = 148  # what the run measured and wrote into its config
    _fake_run(tmp_path / "n3net", json.loads(json.dumps(saved)), 148)
    assert _finished_run(tmp_path / "n3net", want)["steps"] == 148
    # other minutes, or a run that stopped early, are not the finished run
    assert (
        _finished_run(
            tmp_path / "n3net", SRExperimentConfig(budget_minutes=30.0).train_config("n3net")
        )
        is None
    )
    _fake_run(tmp_path / "early", json.loads(json.dumps(saved)), 100)
    assert _finished_run(tmp_path / "early", want) is None


def test_a_step_budget_run_needs_the_same_steps(tmp_path) -> None:
    want = SRExperimentConfig(budget_steps=40).train_config("vdsr")
    _fake_run(tmp_path / "vdsr", json.loads(json.dumps(asdict(want))), 40)
    assert _finished_run(tmp_path / "vdsr", want) is not None
    assert (
        _finished_run(tmp_path / "vdsr", SRExperimentConfig(budget_steps=50).train_config("vdsr"))
        is None
    )


def test_only_trained_scales_can_be_evaluated() -> None:
    import pytest

    from knnlab.errors import InputError

    with pytest.raises(InputError, match="--eval-scales"):
        SRExperimentConfig(scales=(2, 3), eval_scales=(4,))
    assert SRExperimentConfig(eval_scales=(4,)).eval_scales == (4,)
