"""Figures of the hubness experiment (matplotlib ``Figure`` objects; saving is the caller's job).

:func:`add_figures` puts them into an :class:`~knnlab.results.ExperimentResult` as PNG files:

- ``samples.png``: sample grids of the first Hubs row and every baseline, side by side;
- ``samples_by_hub_value.png``: one pool's members at six ranks of hub value;
- ``metrics_vs_threshold.png``: FID, precision, recall, density, coverage against t;
- ``hub_value_vs_distance.png``: k-occurrence against the distance to the mean latent;
- ``novelty.png``: generated samples closest to the training set, next to their neighbours;
- ``samples_<method>.png`` (files, not figures): 64 samples of each method, 2x upscaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from knnlab.figures import image_row, to_display
from knnlab.results import ExperimentResult

__all__ = [
    "FigureData",
    "add_figures",
    "hub_value_vs_distance",
    "metrics_vs_threshold",
    "samples_by_hub_value",
]


@dataclass
class FigureData:
    """What the figures need beyond the tables (pictures and one pool's statistics)."""

    grids: dict[str, torch.Tensor]  # method -> (64, C, H, W) samples in [0, 1]
    bands: list[tuple[str, torch.Tensor]]  # (label, (12, C, H, W)) at ranks of hub value
    pool_kocc: np.ndarray  # (P,) k-occurrence of one pool
    pool_dist: np.ndarray  # (P,) distance of each pool latent to the centre
    pool_znorm: np.ndarray  # (P,) |z| of each pool latent
    novelty: dict[str, tuple[np.ndarray, torch.Tensor]] = field(default_factory=dict)
    train_feats: np.ndarray | None = None  # (M, d) features of the training images
    train_images: torch.Tensor | None = None  # (M, C, H, W)


def _grid(images: torch.Tensor, nrow: int, pad: int = 2, value: float = 0.5) -> torch.Tensor:
    from knnlab.hubness.train_gan import image_grid

    return image_grid(images, nrow=nrow, pad=pad, value=value)


def samples_by_hub_value(bands: list[tuple[str, torch.Tensor]]) -> Any:
    """Rows of pool members, highest hub value first (``bands`` from the experiment)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 1.1 * len(bands) + 0.5))
    axes = fig.subplots(len(bands), 1, squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], bands):
        grid = to_display(_grid(imgs, nrow=len(imgs), pad=1, value=1.0))
        if grid.ndim == 2:
            ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(grid)
        ax.set_title(label, fontsize=8, loc="left")
        ax.axis("off")
    fig.suptitle(
        "Samples of one pool sorted by hub value (k-occurrence), highest first", fontsize=10
    )
    return fig


def metrics_vs_threshold(rows: list[dict[str, Any]], features: str) -> Any:
    """FID (log scale), precision, recall, density, coverage of Hubs(t) against t, with the
    baselines as horizontal lines."""
    from matplotlib.figure import Figure

    hub_rows = sorted(
        [r for r in rows if r["method"].startswith("Hubs(")], key=lambda r: r["threshold"]
    )
    others = [r for r in rows if not r["method"].startswith("Hubs(")]
    metrics = [
        ("fid", f"FID ({features})"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("density", "density"),
        ("coverage", "coverage"),
    ]
    fig = Figure(figsize=(15, 3.2))
    axes = fig.subplots(1, len(metrics))
    ts = [r["threshold"] for r in hub_rows]
    styles = ["--", ":", "-."]
    for ax, (key, label) in zip(axes, metrics):
        ax.plot(ts, [r[key] for r in hub_rows], "o-", color="tab:red", label="Hubs(t)")
        for j, r in enumerate(others):
            ax.axhline(r[key], ls=styles[j % 3], color=f"C{j}", label=r["method"])
        ax.set_xlabel("hub threshold t")
        ax.set_title(label, fontsize=9)
        if key == "fid":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("Metrics vs hub threshold (lines: baselines)", fontsize=10)
    fig.tight_layout()
    return fig


def hub_value_vs_distance(
    kocc: np.ndarray,
    dist: np.ndarray,
    znorm: np.ndarray,
    hv: dict[str, Any],
    thresholds: list[int],
) -> Any:
    """Scatter of hub value against the distance to the centre (mean w or the origin) and |z|."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    centre = "mean w" if hv["space"] == "w" else "the origin"
    ax1.scatter(dist, kocc, s=3, alpha=0.3)
    ax1.set_xlabel(f"distance to {centre} ({hv['space'].upper()} space)")
    ax1.set_ylabel("hub value (k-occurrence)")
    ax1.set_title(f"Spearman rho = {hv['spearman_rho']:.3f}", fontsize=9)
    ax2.scatter(znorm, kocc, s=3, alpha=0.3, color="tab:green")
    ax2.set_xlabel("|z|")
    ax2.set_title(f"Spearman rho = {hv['spearman_rho_z_norm']:.3f}", fontsize=9)
    for t in sorted(set(thresholds)):
        ax1.axhline(t, color="tab:red", lw=0.6, ls="--")
    fig.suptitle("Hub value vs distance to the mean latent (one pool)", fontsize=10)
    fig.tight_layout()
    return fig


def _stem(method: str) -> str:
    return "samples_" + method.lower().replace("(", "_").replace(")", "").replace(".", "")


def add_figures(
    res: ExperimentResult, data: FigureData, rows: list[dict[str, Any]], features: str
) -> None:
    """Add every figure (and the per-method sample grids as files) to ``res``."""
    from knnlab.report import image_to_png_bytes

    grids = data.grids
    pick = [m for m in grids if m.startswith("Hubs(")][:1] + [
        m for m in grids if not m.startswith("Hubs(")
    ]
    res.add_figure(
        image_row([_grid(grids[m][:32], nrow=8) for m in pick], pick),
        "samples.png",
        caption="32 samples of each method (first Hubs row and the baselines)",
    )
    res.add_figure(
        samples_by_hub_value(data.bands),
        "samples_by_hub_value.png",
        caption="Members of one pool at six ranks of hub value",
    )
    res.add_figure(
        metrics_vs_threshold(rows, features),
        "metrics_vs_threshold.png",
        caption="Metrics of Hubs(t) against the threshold t; lines: baselines",
    )
    hv = res.data["hub_value_vs_distance"]
    res.add_figure(
        hub_value_vs_distance(
            data.pool_kocc,
            data.pool_dist,
            data.pool_znorm,
            hv,
            [r["threshold"] for r in rows if "threshold" in r],
        ),
        "hub_value_vs_distance.png",
        caption=f"Hub value vs distance to the mean latent: Spearman rho = "
        f"{hv['spearman_rho']:.3f} (negative: hubs lie near the centre, the paper's link between "
        "hubs and truncation)",
    )
    first = rows[0]["method"]
    if first in data.novelty and data.train_feats is not None and data.train_images is not None:
        from knnlab.metrics import novelty_figure_data, plot_novelty

        fake, images = data.novelty[first]
        nov = novelty_figure_data(fake, data.train_feats, images, data.train_images, n_show=6, k=4)
        res.add_figure(
            plot_novelty(
                nov,
                value_range=(0.0, 1.0),
                title=f"{first}: generated samples closest to the training set, and their "
                f"nearest training samples ({features})",
            ),
            "novelty.png",
            caption=f"{first}: the generated samples nearest to a training image, with their "
            "nearest training images",
        )
    for method, imgs in grids.items():
        grid = _grid(imgs, nrow=8)
        grid = grid.repeat_interleave(2, 1).repeat_interleave(2, 2)  # 2x, nearest
        res.add_file(_stem(method) + ".png", image_to_png_bytes(grid))
