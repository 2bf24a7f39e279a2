"""k-NN based fidelity/diversity metrics on feature matrices ``(N, d)``.

* :func:`precision_recall` — improved precision and recall (Kynkäänniemi et al., NeurIPS 2019):
  each sample's ball has radius = distance to its k-th nearest neighbour in its own set (self
  excluded, ``k = 3`` by default); precision = share of fake samples inside at least one real ball,
  recall = share of real samples inside at least one fake ball.
* :func:`density_coverage` — density and coverage (Naeem et al., ICML 2020), real balls only
  (``k = 5``): density = ``1/(k M) * sum_j #{i : fake_j in B(real_i)}``, coverage = share of real
  samples whose ball contains at least one fake sample.

**Tie rule** (a sample exactly on a ball's boundary), as in each metric's reference code:
precision and recall count it (closed balls, ``d <= r``: Kynkäänniemi et al.,
kynkaat/improved-precision-and-recall-metric, ``distance_batch <= self.D``); density and coverage
do not (open balls, ``d < r``: Naeem et al., clovaai/generative-evaluation-prdc,
``distance_real_fake < radii``). Note that the prdc package also computes precision and recall
with ``<``; here they follow their own paper's code.

Everything is memory-bounded: radii through :func:`knnlab.knn.search` (the ``(N, k)`` result
only), ball tests chunked over fake × real blocks compared against the radii — no N × M matrix is
ever built, so 50k × 50k runs in a few hundred MiB. Radii and boundary cases are evaluated exactly
in float64, so ties (duplicate points, a sample exactly at a radius) follow the tie rule exactly.
"""

from __future__ import annotations

from typing import Any

import torch

from knnlab.metrics._common import (
    _check_pair,
    as_features,
    ball_membership,
    exact_sq_dist,
    kth_radii,
)

__all__ = ["density_coverage", "prdc", "precision_recall"]


def precision_recall(
    real: Any,
    fake: Any,
    k: int = 3,
    *,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> tuple[float, float]:
    """Improved precision and recall ``(precision, recall)`` of ``fake`` w.r.t. ``real`` features.

    Closed balls: a sample exactly at a radius is inside (see the tie rule)."""
    r = as_features(real, "real", min_rows=2)
    f = as_features(fake, "fake", min_rows=2).to(r.device)
    _check_pair(r, f)
    r_rad = kth_radii(r, k, backend=backend, memory_budget=memory_budget)
    f_rad = kth_radii(f, k, backend=backend, memory_budget=memory_budget)
    precision = ball_membership(f, r, r_rad, memory_budget=memory_budget).double().mean()
    recall = ball_membership(r, f, f_rad, memory_budget=memory_budget).double().mean()
    return float(precision), float(recall)


def _density_coverage_from_radii(
    r: torch.Tensor,
    f: torch.Tensor,
    r_rad: torch.Tensor,
    k: int,
    *,
    backend: str,
    memory_budget: int | None,
) -> tuple[float, float]:
    from knnlab import knn

    counts = ball_membership(f, r, r_rad, count=True, strict=True, memory_budget=memory_budget)
    density = float(counts.double().sum() / (k * f.shape[0]))
    _, nn = knn.search(r, f, 1, backend=backend, memory_budget=memory_budget)
    nn_t = torch.as_tensor(nn).to(r.device)[:, 0].long()
    rows = torch.arange(r.shape[0], device=r.device)
    d_nn = exact_sq_dist(r, f, rows, nn_t)
    coverage = float((d_nn < r_rad).double().mean())
    return density, coverage


def density_coverage(
    real: Any,
    fake: Any,
    k: int = 5,
    *,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> tuple[float, float]:
    """Density and coverage ``(density, coverage)`` (Naeem et al. 2020) from feature matrices.

    Open balls: a fake sample exactly at a real sample's radius is outside (see the tie rule)."""
    r = as_features(real, "real", min_rows=2)
    f = as_features(fake, "fake", min_rows=1).to(r.device)
    _check_pair(r, f)
    r_rad = kth_radii(r, k, backend=backend, memory_budget=memory_budget)
    return _density_coverage_from_radii(
        r, f, r_rad, k, backend=backend, memory_budget=memory_budget
    )


def prdc(
    real: Any,
    fake: Any,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> dict[str, float]:
    """All four: ``{"precision", "recall", "density", "coverage"}`` (real radii shared when
    ``k_pr == k_dc``)."""
    r = as_features(real, "real", min_rows=2)
    f = as_features(fake, "fake", min_rows=2).to(r.device)
    _check_pair(r, f)
    r_rad_pr = kth_radii(r, k_pr, backend=backend, memory_budget=memory_budget)
    f_rad = kth_radii(f, k_pr, backend=backend, memory_budget=memory_budget)
    precision = float(ball_membership(f, r, r_rad_pr, memory_budget=memory_budget).double().mean())
    recall = float(ball_membership(r, f, f_rad, memory_budget=memory_budget).double().mean())
    r_rad_dc = (
        r_rad_pr
        if k_dc == k_pr
        else kth_radii(r, k_dc, backend=backend, memory_budget=memory_budget)
    )
    density, coverage = _density_coverage_from_radii(
        r, f, r_rad_dc, k_dc, backend=backend, memory_budget=memory_budget
    )
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}
