"""Hub collection over shared pools: every threshold's hubs from one stream of pools, each pool's
k-occurrence computed once (what one ``HubSampler`` per threshold would return)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from knnlab.errors import KnnlabError

__all__ = ["collect_hubs", "sorted_bands"]


def collect_hubs(
    sampler: Any, thresholds: tuple[int, ...] | list[int], n: int, max_pools: int = 400
) -> dict[int, dict[str, Any]]:
    """For each threshold t, the first ``n`` pool members with k-occurrence ``>= t`` over the pools
    ``sampler.draw_pool()`` yields — what ``HubSampler(threshold=t)`` with the same random stream
    returns — computing each pool's k-occurrence once for all thresholds.

    Returns ``{t: {"latents", "z", "hub_values", "acceptance_rate", "pools_drawn"}}``.
    """
    ts = sorted({int(t) for t in thresholds})
    got: dict[int, dict[str, Any]] = {
        t: {"latents": [], "z": [], "hub_values": [], "count": 0, "found": 0, "candidates": 0}
        for t in ts
    }
    pools = 0
    while any(got[t]["count"] < n for t in ts):
        if pools >= max_pools:
            short = {t: got[t]["count"] for t in ts if got[t]["count"] < n}
            raise KnnlabError(
                f"hub sampling: after {pools} pools still short of n={n} for thresholds {short}; "
                "lower the thresholds, lower --n or raise max_pools"
            )
        z, lat, kocc = sampler.draw_pool()
        pools += 1
        for t in ts:
            g = got[t]
            if g["count"] >= n:
                continue
            sel = np.flatnonzero(kocc >= t)
            g["found"] += int(sel.size)
            g["candidates"] += len(kocc)
            take = sel[: n - g["count"]]
            if take.size:
                idx = torch.from_numpy(take).to(lat.device)
                g["latents"].append(lat[idx])
                g["z"].append(z[idx.to(z.device)])
                g["hub_values"].append(kocc[take])
                g["count"] += int(take.size)
            g["pools_drawn"] = g["candidates"] // len(kocc)
    out: dict[int, dict[str, Any]] = {}
    for t in ts:
        g = got[t]
        out[t] = {
            "latents": torch.cat(g["latents"]),
            "z": torch.cat(g["z"]),
            "hub_values": np.concatenate(g["hub_values"]).astype(np.int64),
            "acceptance_rate": g["found"] / g["candidates"],
            "pools_drawn": g["pools_drawn"],
        }
    return out


def sorted_bands(
    kocc: np.ndarray, order: np.ndarray, per_band: int = 12
) -> list[tuple[str, np.ndarray]]:
    """Pool members at 6 ranks of hub value, highest first: (label, indices)."""
    n = len(order)
    starts = [0, n // 100, n // 10, n // 2, n - n // 10, n - per_band]
    names = ["top hubs", "top 1%", "top 10%", "median", "bottom 10%", "anti-hubs"]
    bands = []
    for name, s in zip(names, starts):
        s = min(max(s, 0), max(n - per_band, 0))
        idx = order[s : s + per_band]
        lo, hi = int(kocc[idx].min()), int(kocc[idx].max())
        bands.append((f"{name}: k-occ {hi}..{lo}" if hi != lo else f"{name}: k-occ {hi}", idx))
    return bands
