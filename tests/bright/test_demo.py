from __future__ import annotations

import math

import torch

from knnlab.bright.demo import BUILTIN_DIR, builtin_autoencoder, section
from knnlab.report import Report


def test_shipped_weights_are_small_and_load() -> None:
    size = sum(f.stat().st_size for f in BUILTIN_DIR.iterdir())
    assert size < 5 * 2**20
    m = builtin_autoencoder()
    assert m.config.code_shape == (8, 8, 4) and not m.training


def test_demo_section_quick(shared_datasets) -> None:
    report = Report("t")
    section(report, quick=True, device=torch.device("cpu"), seed=0)
    res = report.results["bright"]
    assert res["num_images"] == 64 and math.isfinite(res["psnr"])
    assert "grid entries used" in res["usage_summary"]
    assert "BRIGHT" in report.to_html()
