from __future__ import annotations

import json

import pytest

from knnlab.cli import main


@pytest.mark.slow
def test_experiment_quick_writes_table_and_figures(tmp_path, shared_datasets, capsys) -> None:
    out = tmp_path / "exp"
    code = main(["experiment", "bright", "--quick", "--data", "MNIST", "--methods", "bright,vq",
                 "-o", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    rows = res["tables"][0]["rows"]
    assert [r["method"] for r in rows] == ["BRIGHT", "VQ"]
    assert all(r["code size"] == "8×8×4" and r["steps"] == 5 for r in rows)
    assert (out / "reconstructions.png").is_file() and (out / "usage.png").is_file()


def test_experiment_rejects_unknown_data(tmp_path, capsys) -> None:
    assert main(["experiment", "bright", "--data", "FFHQ", "-o", str(tmp_path / "x")]) == 2
    assert "--data ['FFHQ']" in capsys.readouterr().err
