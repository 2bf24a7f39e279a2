"""The hubness experiment: shared-pool hub collection equals HubSampler, the table's shape checks,
and an end-to-end run on the built-in generator writing results, figures and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from knnlab.hubness import HubSampler
from knnlab.hubness.experiment import (
    HubnessExperimentConfig,
    collect_hubs,
    format_table,
    run_experiment,
    shape_checks,
    write_outputs,
)
from knnlab.hubness.gan import BUILTIN_GAN_DIR
from knnlab.metrics.features.mnist import BUILTIN_CLASSIFIER_DIR

shipped = pytest.mark.skipif(
    not (BUILTIN_GAN_DIR / "model.safetensors").is_file()
    or not (BUILTIN_CLASSIFIER_DIR / "model.safetensors").is_file(),
    reason="built-in weights not shipped",
)


@pytest.mark.parametrize("space", ["z", "w"])
def test_collect_hubs_equals_independent_hub_samplers(space: str) -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 6)
    mapping = (lambda z: torch.tanh(lin(z))) if space == "w" else None
    kw = dict(k=5, pool_size=400, space=space, mapping=mapping, seed=7)
    got = collect_hubs(HubSampler(8, threshold=8, **kw), (8, 11), n=30)
    for t in (8, 11):
        s = HubSampler(8, threshold=t, **kw)
        lat = s.sample(30)
        torch.testing.assert_close(got[t]["latents"], lat)
        np.testing.assert_array_equal(got[t]["hub_values"], s.stats["hub_values"])
        assert got[t]["acceptance_rate"] == pytest.approx(s.stats["acceptance_rate"])
        assert got[t]["pools_drawn"] == s.stats["pools_drawn"]
        assert (got[t]["hub_values"] >= t).all()


def test_shape_checks() -> None:
    rows = [
        {"method": "Hubs(20)", "fid": 1.0, "precision": 0.9, "recall": 0.3},
        {"method": "Truncated(0.7)", "fid": 2.0, "precision": 0.8, "recall": 0.2},
        {"method": "Truncated(0.3)", "fid": 5.0, "precision": 0.9, "recall": 0.01},
        {"method": "Random", "fid": 3.0, "precision": 0.7, "recall": 0.4},
    ]
    assert all(shape_checks(rows).values())
    rows[0]["fid"] = 4.0
    assert not shape_checks(rows)["best_hubs_fid_below_random"]


def test_config_validation() -> None:
    from knnlab.errors import InputError

    with pytest.raises(InputError, match="thresholds"):
        HubnessExperimentConfig(thresholds=(10**6,)).validate()
    with pytest.raises(InputError, match="features"):
        HubnessExperimentConfig(features="clip").validate()


@shipped
@pytest.mark.slow
def test_end_to_end_on_the_builtin_generator(tmp_path, shared_datasets) -> None:
    cfg = HubnessExperimentConfig(
        n=120,
        pool_size=600,
        thresholds=(10, 14),
        n_real=400,
        n_train=1000,
        n_novelty=100,
        kid_subsets=5,
        device="cpu",
    )
    results, artefacts = run_experiment(cfg)
    methods = [r["method"] for r in results["table"]]
    assert methods == ["Hubs(14)", "Hubs(10)", "Truncated(0.7)", "Truncated(0.3)", "Random"]
    for r in results["table"]:
        assert r["n"] == 120
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and r["fid"] >= 0
    assert results["features"] == "MNIST-classifier features"
    assert results["table"][0]["acceptance_rate"] < results["table"][1]["acceptance_rate"] < 1
    text = format_table(results)
    assert "MNIST-classifier features" in text and "Hubs(14)" in text
    written = write_outputs(results, artefacts, tmp_path / "out")
    for key in ("samples_by_hub_value", "metrics_vs_threshold", "hub_value_vs_distance", "novelty"):
        assert written[key].is_file() and written[key].stat().st_size > 1000
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["hubness"]["table"][0]["method"] == "Hubs(14)"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "FID (MNIST-classifier features)" in html and "Liang et al." in html
    assert not list(tmp_path.glob(".out.*"))  # the temp folder is gone
