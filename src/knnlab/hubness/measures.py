"""Hubness measures: k-occurrence and the statistics of its distribution.

The k-occurrence ``N_k(x)`` of a point is how often it appears among the k nearest neighbours of the
*other* points of the same set (self excluded). In high dimensions its distribution becomes skewed:
a few *hubs* are neighbours of very many points, many *antihubs* of none (Radovanović et al., 2010).

:func:`hubness_stats` computes the measures that scikit-hubness (``skhubness.analysis.Hubness``,
file ``skhubness/analysis/estimation.py``, Feldbauer et al.) offers, with the same definitions, so
that numbers are comparable with the literature that used it:

* ``k_skewness``: ``scipy.stats.skew(N_k)``, the (biased, population) skewness ``m3 / m2**1.5``
  of the k-occurrence [Radovanović et al. 2010, JMLR 11, eq. 1].
* ``hub_occurrence``: share of all ``n * k`` neighbour slots taken by hubs, hubs being points with
  ``N_k >= hub_size * k`` (scikit-hubness: ``hub_size = 2``, comparison ``>=``).
* ``antihub_occurrence``: share of points with ``N_k == 0``.
* ``robinhood``: Robin Hood (Hoover) index ``0.5 * sum|N_k - mean(N_k)| / sum(N_k)``
  [Feldbauer et al. 2018, IEEE ICBK].
* ``gini``: Gini index ``sum_ij |N_k(i) - N_k(j)| / (2 n sum N_k)``; computed here through the
  equivalent sorted form ``sum_i (2i - n - 1) N_k(i) / (n sum N_k)`` (O(n log n) instead of O(n²)).
* ``atkinson`` (ε = 0.5) and ``groupie_ratio`` (largest k-occurrence / (n k)) as in scikit-hubness.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError

__all__ = ["as_k_occurrence", "hubness_stats", "k_occurrence"]


def _as_2d_float(x: Any, name: str = "x") -> Any:
    t: Any = x.detach() if isinstance(x, torch.Tensor) else np.asarray(x)
    if t.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (N, d); got shape {tuple(t.shape)}")
    if isinstance(t, np.ndarray) and not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float32)
    if isinstance(t, torch.Tensor) and not t.is_floating_point():
        t = t.float()
    return t


def k_occurrence(
    x: Any,
    k: int,
    *,
    backend: str = "auto",
    approximate: bool = False,
    memory_budget: int | None = None,
    **search_kwargs: Any,
) -> np.ndarray:
    """k-occurrence of every row of ``x`` (N, d): how often it is among the k nearest neighbours
    (squared L2, self excluded, ties by lower index) of the other rows.

    Returns an ``(N,)`` int64 array whose sum is ``N * k``. The search goes through
    :func:`knnlab.knn.search` (chunked, memory-bounded); only the ``(N, k)`` neighbour indices are
    kept, so N = 10⁶ runs in bounded memory. ``approximate=True`` uses the approximate backend
    (much faster at 10⁶; the k-occurrence is then an estimate). Further keyword arguments
    (``nprobe``, ``seed``) go to :func:`knnlab.knn.search`.
    """
    from knnlab import knn

    x = _as_2d_float(x)
    n = int(x.shape[0])
    if not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer; got {k!r}")
    if n <= k:
        raise InputError(
            f"k-occurrence needs more than k = {k} points (self excluded); got N = {n}"
        )
    _, idx = knn.search(
        x,
        x,
        int(k),
        exclude_self=True,
        backend=backend,
        memory_budget=memory_budget,
        approximate=approximate,
        **search_kwargs,
    )
    idx_np = idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
    idx_np = idx_np.reshape(-1).astype(np.int64, copy=False)
    idx_np = idx_np[idx_np >= 0]  # an approximate backend may pad missing neighbours with -1
    return np.bincount(idx_np, minlength=n).astype(np.int64, copy=False)


def as_k_occurrence(x_or_k_occurrence: Any, k: int, **search_kwargs: Any) -> np.ndarray:
    """A 1-D array is taken as a k-occurrence; a 2-D one as points whose k-occurrence is computed."""
    arr = x_or_k_occurrence
    if isinstance(arr, torch.Tensor):
        if arr.ndim == 1:
            return arr.detach().cpu().numpy().astype(np.int64)
        return k_occurrence(arr, k, **search_kwargs)
    arr = np.asarray(arr)
    if arr.ndim == 1:
        if arr.size and (np.any(arr < 0) or not np.all(np.isfinite(arr))):
            raise InputError("a k-occurrence must be non-negative counts")
        return arr.astype(np.int64)
    if arr.ndim == 2:
        return k_occurrence(arr, k, **search_kwargs)
    raise InputError(f"expected points (N, d) or a k-occurrence (N,); got shape {tuple(arr.shape)}")


def _skewness(v: np.ndarray) -> float:
    # scipy.stats.skew (bias=True): m3 / m2**1.5 with central moments; nan for constant input.
    mean = v.mean()
    dev = v - mean
    m2 = float(np.mean(dev**2))
    m3 = float(np.mean(dev**3))
    if m2 <= (np.finfo(np.float64).eps * max(abs(float(mean)), 1.0)) ** 2:
        return float("nan")
    return m3 / m2**1.5


def _gini(v: np.ndarray) -> float:
    n = v.size
    total = float(v.sum())
    if total == 0:
        return float("nan")
    s = np.sort(v)
    weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1.0
    return float(np.dot(weights, s) / (n * total))


def _atkinson(v: np.ndarray, eps: float = 0.5) -> float:
    mean = v.mean()
    if mean == 0:
        return float("nan")
    term = np.mean(v ** (1.0 - eps)) ** (1.0 / (1.0 - eps))
    return float(1.0 - term / mean)


def hubness_stats(
    x_or_k_occurrence: Any,
    k: int,
    *,
    hub_size: float = 2.0,
    n_queries: int | None = None,
    **search_kwargs: Any,
) -> dict[str, Any]:
    """Hubness measures of a point set ``(N, d)`` or of a precomputed k-occurrence ``(N,)``.

    Definitions follow scikit-hubness (see the module docstring). ``hub_size``: hubs are points with
    k-occurrence ``>= hub_size * k``. ``n_queries``: number of query points whose neighbour lists
    produced the k-occurrence (default N, the all-vs-all case); it normalises ``hub_occurrence``
    and ``groupie_ratio``. Extra keyword arguments go to :func:`k_occurrence` (``backend``,
    ``approximate``, ``memory_budget``).

    Returns a dict with ``k``, ``n``, ``k_skewness``, ``hub_occurrence``, ``antihub_occurrence``,
    ``robinhood``, ``gini``, ``atkinson``, ``groupie_ratio``, ``n_hubs``, ``n_antihubs``,
    ``max_k_occurrence``, ``hub_threshold`` (all plain Python numbers).
    """
    if not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer; got {k!r}")
    if hub_size <= 0:
        raise InputError(f"hub_size must be > 0; got {hub_size!r}")
    kocc = as_k_occurrence(x_or_k_occurrence, int(k), **search_kwargs)
    n = int(kocc.size)
    if n == 0:
        raise InputError("hubness_stats needs at least one point")
    nq = n if n_queries is None else int(n_queries)
    v = kocc.astype(np.float64)
    hub_threshold = hub_size * k
    hubs = kocc >= hub_threshold
    total = float(v.sum())
    robinhood = 0.5 * float(np.abs(v - v.mean()).sum()) / total if total > 0 else float("nan")
    return {
        "k": int(k),
        "n": n,
        "k_skewness": _skewness(v),
        "hub_occurrence": float(v[hubs].sum() / k / nq),
        "antihub_occurrence": float(np.count_nonzero(kocc == 0) / n),
        "robinhood": robinhood,
        "gini": _gini(v),
        "atkinson": _atkinson(v),
        "groupie_ratio": float(v.max() / nq / k),
        "n_hubs": int(hubs.sum()),
        "n_antihubs": int(np.count_nonzero(kocc == 0)),
        "max_k_occurrence": int(kocc.max()),
        "hub_threshold": float(hub_threshold),
        "mean_k_occurrence": float(v.mean()),
        "std_k_occurrence": float(v.std()),
    }
