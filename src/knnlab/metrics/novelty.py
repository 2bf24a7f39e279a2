"""Nearest-neighbour novelty: are generated samples new, or copies of training samples?

For every generated sample, its nearest training samples in a feature space (exact, through
:func:`knnlab.knn.search`, memory-bounded), a memorization rate, and a figure of generated samples
next to their nearest training samples.

Memorization criterion (default): the ratio test of Yoon et al. ("Diffusion probabilistic models
generalize when they fail to memorize", ICML 2023 workshop) also used by Gu et al. (2023) — a
generated sample counts as memorized when ``d(x, nn1) < ratio * d(x, nn2)`` with ``ratio = 1/3``
(Euclidean distances to the nearest and second-nearest training samples): it is far closer to one
training sample than to any other. Alternatively, an absolute ``threshold`` on ``d(x, nn1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError
from knnlab.metrics._common import _check_pair, as_features, exact_sq_dist

__all__ = [
    "NearestTraining",
    "memorization_rate",
    "nearest_training",
    "novelty_figure_data",
    "plot_novelty",
]


@dataclass
class NearestTraining:
    """``distance``: ``(n, k)`` Euclidean (not squared) distances, float64, ascending;
    ``index``: ``(n, k)`` int64 indices into the training set."""

    distance: np.ndarray
    index: np.ndarray


def nearest_training(
    generated: Any,
    training: Any,
    k: int = 1,
    *,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> NearestTraining:
    """The ``k`` nearest training samples (in feature space) of each generated sample."""
    from knnlab import knn

    g = as_features(generated, "generated")
    t = as_features(training, "training").to(g.device)
    _check_pair(g, t)
    if not isinstance(k, int | np.integer) or not 1 <= k <= t.shape[0]:
        raise InputError(f"k must be between 1 and the number of training samples; got {k!r}")
    _, idx = knn.search(g, t, int(k), backend=backend, memory_budget=memory_budget)
    idx_t = torch.as_tensor(idx).to(g.device).long()
    rows = torch.arange(g.shape[0], device=g.device).repeat_interleave(int(k))
    d2 = exact_sq_dist(g, t, rows, idx_t.reshape(-1)).reshape(g.shape[0], int(k))
    return NearestTraining(
        distance=d2.sqrt().cpu().numpy(), index=idx_t.cpu().numpy().astype(np.int64)
    )


def memorization_rate(
    generated: Any,
    training: Any,
    *,
    ratio: float = 1.0 / 3.0,
    threshold: float | None = None,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> dict[str, Any]:
    """Share of generated samples that look memorized.

    With ``threshold=None``: ratio test ``d1 < ratio * d2`` (see the module docstring); with a
    ``threshold``: ``d1 <= threshold``. Returns ``{"rate", "memorized" (bool mask), "d1", "d2",
    "index" (nearest training index), "criterion", "median_d1"}``.
    """
    if threshold is None and not 0 < ratio <= 1:
        raise InputError(f"ratio must be in (0, 1]; got {ratio!r}")
    nt = nearest_training(generated, training, k=2, backend=backend, memory_budget=memory_budget)
    d1, d2 = nt.distance[:, 0], nt.distance[:, 1]
    if threshold is None:
        mem = d1 < ratio * d2
        criterion = f"d1 < {ratio:.4g} * d2"
    else:
        mem = d1 <= float(threshold)
        criterion = f"d1 <= {float(threshold):.4g}"
    return {
        "rate": float(mem.mean()) if mem.size else float("nan"),
        "memorized": mem,
        "d1": d1,
        "d2": d2,
        "index": nt.index[:, 0],
        "criterion": criterion,
        "median_d1": float(np.median(d1)) if d1.size else float("nan"),
    }


def _images_np(images: Any) -> np.ndarray:
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return arr


def novelty_figure_data(
    generated_features: Any,
    training_features: Any,
    generated_images: Any = None,
    training_images: Any = None,
    *,
    n_show: int = 8,
    k: int = 3,
    order: str = "closest",
    seed: int = 0,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> dict[str, Any]:
    """Data for the novelty figure: ``n_show`` generated samples, each with its ``k`` nearest
    training samples.

    ``order``: ``"closest"`` (the generated samples nearest to the training set — the most
    suspicious ones), ``"farthest"``, ``"first"`` or ``"random"`` (seeded). Returns a dict with
    ``query_index (n_show,)``, ``neighbour_index (n_show, k)``, ``distance (n_show, k)`` and, when
    images are given, ``query_images`` and ``neighbour_images (n_show, k, ...)`` (numpy).
    """
    if order not in ("closest", "farthest", "first", "random"):
        raise InputError(f"order must be closest, farthest, first or random; got {order!r}")
    nt = nearest_training(
        generated_features, training_features, k=k, backend=backend, memory_budget=memory_budget
    )
    n = nt.distance.shape[0]
    n_show = int(min(max(n_show, 0), n))
    if order == "closest":
        q = np.argsort(nt.distance[:, 0], kind="stable")[:n_show]
    elif order == "farthest":
        q = np.argsort(-nt.distance[:, 0], kind="stable")[:n_show]
    elif order == "first":
        q = np.arange(n_show)
    else:
        q = np.sort(np.random.default_rng(seed).choice(n, n_show, replace=False))
    out: dict[str, Any] = {
        "query_index": q.astype(np.int64),
        "neighbour_index": nt.index[q],
        "distance": nt.distance[q],
    }
    if generated_images is not None:
        out["query_images"] = _images_np(generated_images)[q]
    if training_images is not None:
        timgs = _images_np(training_images)
        out["neighbour_images"] = timgs[nt.index[q].reshape(-1)].reshape(
            (len(q), nt.index.shape[1], *timgs.shape[1:])
        )
    return out


def _to_display(img: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    lo, hi = (
        value_range
        if value_range is not None
        else ((-1.0, 1.0) if a.min() < 0 else (0.0, 1.0 if a.max() <= 1.0 else 255.0))
    )
    return np.clip((a - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def plot_novelty(
    data: dict[str, Any],
    *,
    value_range: tuple[float, float] | None = None,
    title: str | None = "Generated samples (left) and their nearest training samples",
    path: Any = None,
) -> Any:
    """Draw :func:`novelty_figure_data`'s result: one row per generated sample, its image then its
    k nearest training images with the feature-space distance above each. Returns the matplotlib
    ``Figure`` (saved to ``path`` when given). ``value_range``: pixel range (default: guessed,
    [-1, 1] when negative values occur, else [0, 1] or [0, 255])."""
    from matplotlib.figure import Figure

    if "query_images" not in data or "neighbour_images" not in data:
        raise InputError("plot_novelty needs images: pass generated_images and training_images")
    q_imgs, nb_imgs, dist = data["query_images"], data["neighbour_images"], data["distance"]
    rows, k = dist.shape
    fig = Figure(figsize=(1.4 * (k + 1), 1.5 * max(rows, 1) + (0.4 if title else 0.0)))
    axes = fig.subplots(max(rows, 1), k + 1, squeeze=False)
    for r in range(rows):
        tiles = [(q_imgs[r], f"gen #{int(data['query_index'][r])}")]
        tiles += [(nb_imgs[r, j], f"d={dist[r, j]:.3g}") for j in range(k)]
        for c, (img, label) in enumerate(tiles):
            ax = axes[r, c]
            disp = _to_display(img, value_range)
            ax.imshow(disp, cmap="gray" if disp.ndim == 2 else None, vmin=0.0, vmax=1.0)
            ax.set_title(label, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                for s in ax.spines.values():
                    s.set_edgecolor("tab:red")
                    s.set_linewidth(1.5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
