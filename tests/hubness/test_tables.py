"""The hubness tables as data: main table columns follow what was measured, the paper's table and
the shape checks ride along, and the CLI's text table formats every row."""

from __future__ import annotations

from knnlab.hubness.tables import PAPER_RESULTS, add_tables, format_table
from knnlab.results import ExperimentResult


def _rows(with_classes: bool) -> list[dict]:
    rows = []
    for i, m in enumerate(["Hubs(10)", "Truncated(0.7)", "Truncated(0.3)", "Random"]):
        r = {
            "method": m,
            "n": 100,
            "acceptance_rate": 0.25 if i == 0 else 1.0,
            "fid": 10.0 + i,
            "kid": 0.5,
            "precision": 0.6 - 0.1 * i,
            "recall": 0.3,
            "density": 0.2,
            "coverage": 0.1,
            "memorization_rate": 0.0,
            "median_nn_distance": 1.0,
        }
        if with_classes:
            r["class_entropy"], r["top_class_share"] = 0.9, 0.2
        rows.append(r)
    return rows


def _res(with_classes: bool) -> ExperimentResult:
    res = ExperimentResult("hubness", "t")
    res.protocol = {"generator": "g", "space": "w", "k": 5, "pool_size": 1000, "features": "F"}
    add_tables(
        res,
        _rows(with_classes),
        features="F",
        pr_k=3,
        dc_k=5,
        training_label="training images",
        n_training=60000,
        notes=["a note"],
    )
    return res


def test_tables_and_columns() -> None:
    res = _res(with_classes=True)
    assert [t.name for t in res.tables] == ["main", "paper", "shape_vs_paper"]
    main = res.table("main")
    assert main.columns is not None and main.columns[-2:] == ["class_entropy", "top_class_share"]
    assert "median_nn_distance" in main.rows[0]  # rows keep every measured key
    assert main.notes == ["a note"] and "FID (F)" in main.caption
    assert main.labels["fid"] == "FID (F)"  # the header names the feature space
    assert res.table("paper").rows == PAPER_RESULTS
    checks = {r["check"]: r["holds"] for r in res.table("shape_vs_paper").rows}
    assert checks["best_hubs_fid_below_random"] is True  # 10 < 13
    no_classes = _res(with_classes=False).table("main")
    assert no_classes.columns is not None and "class_entropy" not in no_classes.columns
    assert "class_entropy" not in no_classes.caption


def test_format_table_text() -> None:
    lines = format_table(_res(with_classes=False)).splitlines()
    assert lines[0].startswith("Hubness experiment (g, W space, k=5, pool 1000, n=100 per row)")
    header = ["method", "accept", "FID", "KID", "P", "R", "D", "C", "memorized", "class", "H"]
    assert lines[1].split() == header
    assert lines[2].split()[:3] == ["Hubs(10)", "25.00%", "10.000"]
    assert lines[2].split()[-1] == "-"  # no class entropy measured
    assert len(lines) == 2 + 4
