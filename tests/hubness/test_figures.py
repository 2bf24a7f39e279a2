"""The hubness figures: every figure and sample-grid file lands in the ExperimentResult, and a
sample grid file holds exactly the samples, tiled as an independent numpy tiling says."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from knnlab.hubness.figures import FigureData, add_figures
from knnlab.results import ExperimentResult


def _rows() -> list[dict]:
    base = {"fid": 10.0, "precision": 0.5, "recall": 0.4, "density": 0.3, "coverage": 0.2}
    return [
        {"method": "Hubs(12)", "threshold": 12, **base},
        {"method": "Hubs(8)", "threshold": 8, **base, "fid": 9.0},
        {"method": "Truncated(0.7)", "psi": 0.7, **base},
        {"method": "Random", **base, "fid": 8.0},
    ]


def _data(novelty: bool) -> FigureData:
    g = torch.Generator().manual_seed(0)
    grids = {r["method"]: torch.rand(10, 1, 5, 4, generator=g) for r in _rows()}
    kocc = np.arange(60) % 13
    data = FigureData(
        grids=grids,
        bands=[(f"band {i}", torch.rand(12, 1, 5, 4, generator=g)) for i in range(6)],
        pool_kocc=kocc,
        pool_dist=np.linspace(1, 2, 60),
        pool_znorm=np.linspace(3, 4, 60),
    )
    if novelty:
        data.novelty = {"Hubs(12)": (np.random.default_rng(0).random((10, 6)), grids["Hubs(12)"])}
        data.train_feats = np.random.default_rng(1).random((30, 6))
        data.train_images = torch.rand(30, 1, 5, 4, generator=g)
    return data


def _result() -> ExperimentResult:
    res = ExperimentResult("hubness", "t")
    res.data["hub_value_vs_distance"] = {
        "spearman_rho": -0.4,
        "spearman_rho_z_norm": 0.1,
        "space": "w",
    }
    return res


def _expected_grid(images: torch.Tensor, nrow: int = 8, pad: int = 2) -> np.ndarray:
    b, _, h, w = images.shape
    rows = -(-b // nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad), 0.5)
    for i in range(b):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) :][:, :w] = images[
            i, 0
        ].numpy()
    out = np.kron(out, np.ones((2, 2)))  # 2x nearest
    return (np.clip(out, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def test_add_figures_writes_every_figure_and_grid() -> None:
    res, data = _result(), _data(novelty=True)
    add_figures(res, data, _rows(), "toy features")
    names = [f.file for f in res.figures]
    assert names == [
        "samples.png",
        "samples_by_hub_value.png",
        "metrics_vs_threshold.png",
        "hub_value_vs_distance.png",
        "novelty.png",
    ]
    assert all(f.caption for f in res.figures)
    assert "rho = -0.400" in res.figures[3].caption
    for name in names:
        assert Image.open(io.BytesIO(res.files[name])).format == "PNG"
    for method, stem in [("Hubs(12)", "hubs_12"), ("Truncated(0.7)", "truncated_07")]:
        got = np.asarray(Image.open(io.BytesIO(res.files[f"samples_{stem}.png"])))
        np.testing.assert_array_equal(got, _expected_grid(data.grids[method]))
    assert sorted(n for n in res.files if n.startswith("samples_")) == [
        "samples_by_hub_value.png",
        "samples_hubs_12.png",
        "samples_hubs_8.png",
        "samples_random.png",
        "samples_truncated_07.png",
    ]
