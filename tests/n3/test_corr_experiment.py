import pytest

from knnlab.n3.corr_experiment import CorrExperimentConfig, run_corr_experiment
from knnlab.results import read_experiment, write_experiment


@pytest.mark.slow
def test_tiny_experiment_end_to_end(shared_datasets, tmp_path):
    cfg = CorrExperimentConfig(budget_steps=2, batch_size=2, num_matches=32, max_pairs=2,
                               scenes=("reichstag",))  # fmt: skip
    res = run_corr_experiment(cfg, tmp_path / "runs")
    write_experiment(tmp_path / "out", res)
    back = read_experiment(tmp_path / "out")
    rows = back.table("map").rows
    assert [r["method"] for r in rows] == ["RANSAC (all matches)", "CNNet + RANSAC",
                                           "N3CNNet + RANSAC"]  # fmt: skip
    assert all(r["pairs"] == 2 and 0 <= r["mAP@20"] <= 100 for r in rows)
    assert (tmp_path / "out" / "pair.png").stat().st_size > 1000
