from __future__ import annotations

import math

import torch

from knnlab.bright.demo import BUILTIN_DIR, builtin_autoencoder, section


def test_shipped_pipeline_is_small_and_loads() -> None:
    from knnlab.bright.demo import builtin_pipeline
    from knnlab.bright.generation import GENERATION_ASSET_DIR

    size = sum(f.stat().st_size for f in GENERATION_ASSET_DIR.rglob("*") if f.is_file())
    assert size < 6 * 2**20
    pipe = builtin_pipeline()
    assert (pipe.codes.channels, pipe.codes.height) == (4, 8)
    assert type(pipe.autoencoder).__name__ == "BrightAutoencoder"


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
    # the shipped diffusion pipeline samples digits: random and hub initial noise, scored
    gen = res.table("bright-generation").rows
    assert [r["initial noise"].split(" (")[0] for r in gen] == ["random x_T", "hub x_T"]
    assert all(math.isfinite(r["FID"]) and 0 <= r["precision"] <= 1 for r in gen)
    assert res.figures[1].file == "generated.png"
    report = Report("t")
    report.add_experiment(res)
    assert "BRIGHT" in report.to_html()
