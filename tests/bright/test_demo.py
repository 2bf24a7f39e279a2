from __future__ import annotations

import math

import torch

from knnlab.bright.demo import BUILTIN_DIR, builtin_autoencoder, section


def test_shipped_weights_are_small_and_load() -> None:
    size = sum(f.stat().st_size for f in BUILTIN_DIR.iterdir())
    assert size < 5 * 2**20
    m = builtin_autoencoder()
    assert m.config.code_shape == (8, 8, 4) and not m.training


def test_demo_section_quick(shared_datasets) -> None:
    from knnlab.report import Report

    res = section(quick=True, device=torch.device("cpu"), seed=0)
    row = res.table("bright").rows[0]
    assert row["num_images"] == 64 and math.isfinite(row["psnr"])
    assert "grid entries used" in row["usage_summary"]
    assert res.figures[0].file == "reconstructions.png"
    report = Report("t")
    report.add_experiment(res)
    assert "BRIGHT" in report.to_html()
