"""Demo section "kNN search": knnlab's exact search against faiss ``IndexFlatL2`` on a small problem,
plus the approximate IVF backend's recall."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from knnlab.knn.core import _faiss_available, _pick_backend, search
from knnlab.results import ExperimentResult

__all__ = ["TITLE", "section"]

TITLE = "kNN search"


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((64, d), dtype=np.float32) * 3.0
    lab = rng.integers(0, 64, n)
    return (centers[lab] + rng.standard_normal((n, d), dtype=np.float32)).astype(np.float32)


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """All-vs-all search (``exclude_self``) on clustered Gaussian data: N = 8 000 (quick: 2 000),
    d = 128, k = 10: times, agreement of neighbour indices and IVF recall (table ``"search"``)."""
    dev = torch.device(device)
    n, d, k = (2000 if quick else 8000), 128, 10
    x_np = _clustered(n, d, seed)
    x = torch.from_numpy(x_np).to(dev)
    search(x[:256], x[:256], 1)  # warm-up (thread pools, CUDA context)
    auto = _pick_backend(dev, n, n, d, all_vs_all=True)
    t_auto, (dist, idx) = _timed(lambda: search(x, x, k, exclude_self=True))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    ref = idx.cpu().numpy()
    rows: list[dict[str, Any]] = [
        {"method": f"knnlab.knn.search (auto -> {auto})", "seconds": t_auto, "agreement": 1.0}
    ]
    if auto != "torch" and not quick:
        t_t, (_, it) = _timed(lambda: search(x, x, k, exclude_self=True, backend="torch"))
        rows.append(
            {
                "method": "knnlab.knn.search (torch)",
                "seconds": t_t,
                "agreement": float((it.cpu().numpy() == ref).mean()),
            }
        )
    if _faiss_available():
        import faiss

        def flat() -> np.ndarray:
            index = faiss.IndexFlatL2(d)
            index.add(x_np)
            _, i = index.search(x_np, k + 1)
            keep = i != np.arange(n)[:, None]
            keep[keep.all(1), -1] = False
            return i[keep].reshape(n, k)

        t_f, i_f = _timed(flat)
        rows.append(
            {"method": "faiss IndexFlatL2", "seconds": t_f, "agreement": float((i_f == ref).mean())}
        )
        t_a, (_, i_a) = _timed(lambda: search(x, x, k, exclude_self=True, approximate=True))
        ia = i_a.cpu().numpy()
        recall = float(np.mean([len(set(a) & set(b)) for a, b in zip(ia, ref)]) / k)
        rows.append(
            {"method": "knnlab approximate (faiss IVF-Flat)", "seconds": t_a, "agreement": recall}
        )
    for r in rows:
        r["seconds"] = round(float(r["seconds"]), 4)
        r["agreement"] = round(float(r["agreement"]), 4)
    res = ExperimentResult(
        "knn",
        TITLE,
        summary=f"All-vs-all k-nearest neighbours (exclude_self) on {n} clustered Gaussian points, "
        f"d = {d}, k = {k}, device {dev}. Agreement: fraction of neighbour indices equal to "
        "knnlab's exact result (for the approximate backend: recall@k).",
    )
    res.add_table(
        "search",
        rows,
        columns=["method", "seconds", "agreement"],
        caption="Time and agreement",
        labels={"seconds": "time (s)"},
    )
    res.protocol = {"n": n, "d": d, "k": k, "device": str(dev), "auto_backend": auto, "seed": seed}
    res.data = {"mean_first_neighbour_dist": float(dist[:, 0].mean())}
    res.timings = {r["method"]: r["seconds"] for r in rows}
    return res
