"""Benchmark: k-occurrence (hubness) of N Gaussian points, d = 512, k = 5 (self excluded).

Compares, for N in {10^4, 10^5, 10^6}:

* ``knnlab``        -- ``knnlab.hubness.k_occurrence`` (exact, ``knnlab.knn.search`` backend auto)
* ``sklearn-brute`` -- ``sklearn.neighbors.NearestNeighbors(algorithm="brute").kneighbors()``
  (no X: self excluded) + bincount
* ``faiss-flat``    -- ``faiss.IndexFlatL2`` search of k + 1, self dropped, + bincount
* ``knnlab-approx`` -- ``k_occurrence(..., approximate=True)`` (faiss IVF through knnlab.knn)
* ``knnlab-search`` -- ``knnlab.knn.search(x, x, k, exclude_self=True)`` + bincount: the search
  that ``k_occurrence`` wraps (not in the default methods; its time should equal ``knnlab``'s)

Each row gives wall seconds and CPU seconds (user + system of the worker); on a shared machine the
wall time also counts the time other jobs hold the cores, so compare CPU seconds at 1 thread.

Every run is a fresh subprocess (``--worker``), so ``peak MiB`` is that process's peak RSS
(``ru_maxrss``) including the input matrix (``data MiB``); ``extra MiB`` = peak - RSS right after
the data was created.

Exact k-occurrence at 10^6 x 10^6 x 512 (~10^15 flops) takes hours on 2 CPU cores, so the exact
methods are skipped there (``--exact-1e6`` forces them; use a GPU). The approximate k-occurrence is
checked two ways:

1. at N = 10^5 (default ``--agree-n``), exact vs approximate k-occurrence of the *same* points:
   Spearman rank correlation, and overlap of the hubs (k-occurrence >= threshold, for
   threshold 2k = 10 as scikit-hubness and 50 as the hub sampler): recall of the exact hubs and
   Jaccard index;
2. at every N where the approximate method ran (10^5 and 10^6), on ``--recall-queries`` random
   queries: exact k nearest neighbours (knnlab exact search against all N points) vs the
   approximate lists -> recall@k of the neighbour lists that the k-occurrence is counted from.

The approximate run uses knnlab's IVF defaults (``nlist = round(sqrt N)``, ``nprobe =
max(8, ceil(nlist / 128))``; ``--nlist`` / ``--nprobe`` override them). i.i.d. Gaussian data in
d = 512 is the worst case for IVF (no cluster structure): expect low recall@k there.

Usage::

    python benchmarks/hubness.py                         # default run (~30 min on 2 cores)
    python benchmarks/hubness.py --sizes 100000 1000000 --methods knnlab knnlab-approx
    python benchmarks/hubness.py --sizes 10000 100000    # smaller
    python benchmarks/hubness.py --out bench_hubness.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

D = 512
K = 5


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        x[s : s + step] = rng.standard_normal((min(step, n - s), d), dtype=np.float32)
    return x


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Rows of k+1 neighbour ids -> k ids without the query itself (or without the last one)."""
    n = idx.shape[0]
    rows = np.arange(n)[:, None]
    is_self = idx == rows
    keep = ~is_self
    no_self = ~is_self.any(1)
    keep[no_self, -1] = False
    return idx[keep].reshape(n, k)


def _import(method: str) -> None:
    """Import the method's libraries before the clock starts."""
    if method.startswith("knnlab"):
        import knnlab.hubness
        import knnlab.knn  # noqa: F401
    elif method == "sklearn-brute":
        import sklearn.neighbors  # noqa: F401
    elif method == "faiss-flat":
        import faiss  # noqa: F401


def worker(
    method: str, n: int, d: int, k: int, save: str | None, nprobe: int | None, nlist: int | None
) -> dict:
    _import(method)
    x = _data(n, d)
    base = _rss_mib()
    t0 = time.perf_counter()
    c0 = time.process_time()
    extra: dict = {}
    if method == "knnlab":
        from knnlab.hubness import k_occurrence

        kocc = k_occurrence(x, k)
    elif method == "knnlab-search":
        from knnlab import knn

        _, idx = knn.search(x, x, k, exclude_self=True)
        kocc = np.bincount(idx.reshape(-1), minlength=n)
    elif method == "knnlab-approx":
        from knnlab import knn

        _, idx = knn.search(
            x, x, k, exclude_self=True, approximate=True, nprobe=nprobe, nlist=nlist
        )
        ids = idx.reshape(-1)
        kocc = np.bincount(ids[ids >= 0], minlength=n)
        elapsed = time.perf_counter() - t0
        if save:
            np.save(save + ".idx.npy", idx)
        extra["elapsed_before_checks"] = elapsed
        extra["cpu_before_checks"] = time.process_time() - c0
    elif method == "sklearn-brute":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x)
        idx = nn.kneighbors(return_distance=False)
        kocc = np.bincount(idx.ravel(), minlength=n)
    elif method == "faiss-flat":
        import faiss

        index = faiss.IndexFlatL2(d)
        index.add(x)
        _, idx = index.search(x, k + 1)
        kocc = np.bincount(_drop_self(idx, k).ravel(), minlength=n)
    else:
        raise SystemExit(f"unknown method {method}")
    elapsed = extra.pop("elapsed_before_checks", time.perf_counter() - t0)
    cpu = extra.pop("cpu_before_checks", time.process_time() - c0)
    if save:
        np.save(save, kocc)
    return {
        "method": method,
        "n": n,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "peak_mib": _peak_mib(),
        "data_mib": x.nbytes / 2**20,
        "extra_mib": _peak_mib() - base,
        "kocc_sum": int(kocc.sum()),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }


def run_worker(method: str, n: int, args: argparse.Namespace, save: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(n), "--d", str(args.d)]
    cmd += ["--k", str(args.k)]
    if save:
        cmd += ["--save", save]
    if args.nprobe:
        cmd += ["--nprobe", str(args.nprobe)]
    if args.nlist:
        cmd += ["--nlist", str(args.nlist)]
    print(f"  {method:14s} N={n:>8d} ...", end="", flush=True, file=sys.stderr)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(" timeout", file=sys.stderr)
        return {"method": method, "n": n, "skipped": f"> {args.timeout} s timeout"}
    if p.returncode != 0:
        print(" failed", file=sys.stderr)
        tail = (p.stderr or "").strip().splitlines()[-1:] or ["?"]
        return {"method": method, "n": n, "skipped": f"failed (rc {p.returncode}): {tail[0]}"}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    print(
        f" {res['seconds']:.1f} s (CPU {res['cpu_seconds']:.1f} s), peak {res['peak_mib']:.0f} MiB",
        file=sys.stderr,
    )
    return res


def agreement(exact: np.ndarray, approx: np.ndarray, k: int) -> dict:
    from scipy.stats import spearmanr

    out = {"spearman": float(spearmanr(exact, approx).statistic)}
    for thr in (2 * k, 50):
        a, b = exact >= thr, approx >= thr
        inter = int((a & b).sum())
        out[f"hubs>={thr}: exact"] = int(a.sum())
        out[f"hubs>={thr}: approx"] = int(b.sum())
        out[f"hubs>={thr}: recall"] = inter / max(int(a.sum()), 1)
        out[f"hubs>={thr}: jaccard"] = inter / max(int((a | b).sum()), 1)
    return out


def recall_at_k(n: int, d: int, k: int, idx_path: str, n_queries: int) -> dict:
    """Exact k-NN (knnlab exact search) of random queries vs the approximate neighbour lists."""
    from knnlab import knn

    x = _data(n, d)
    approx = np.load(idx_path)
    q = np.sort(np.random.default_rng(1).choice(n, n_queries, replace=False))
    t0 = time.perf_counter()
    _, idx = knn.search(x[q], x, k + 1)
    # row i is point q[i]: drop it from its own list (or the last neighbour if it is absent)
    exact = np.array([[j for j in row if j != qq][:k] for qq, row in zip(q, np.asarray(idx))])
    hits = sum(len(set(exact[i]) & set(approx[qq])) for i, qq in enumerate(q))
    return {
        "queries": n_queries,
        "recall_at_k": hits / (n_queries * k),
        "seconds_exact_queries": time.perf_counter() - t0,
    }


def fmt_table(rows: list[dict]) -> str:
    lines = [
        "| N | method | time (s) | CPU (s) | peak MiB | extra MiB (over data) | note |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(
                f"| {r['n']:,} | {r['method']} | – | – | – | – | skipped: {r['skipped']} |"
            )
        else:
            lines.append(
                f"| {r['n']:,} | {r['method']} | {r['seconds']:.1f} | "
                f"{r.get('cpu_seconds', float('nan')):.1f} | {r['peak_mib']:.0f} | "
                f"{r['extra_mib']:.0f} | data {r['data_mib']:.0f} MiB |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--d", type=int, default=D)
    ap.add_argument("--k", type=int, default=K)
    ap.add_argument(
        "--methods", nargs="+", default=["knnlab", "sklearn-brute", "faiss-flat", "knnlab-approx"]
    )
    ap.add_argument("--exact-1e6", action="store_true", help="also run exact methods at N >= 10^6")
    ap.add_argument("--agree-n", type=int, default=100_000, help="N of the exact-vs-approx check")
    ap.add_argument("--recall-queries", type=int, default=1000)
    ap.add_argument("--nprobe", type=int, default=None, help="IVF lists probed (approximate)")
    ap.add_argument("--nlist", type=int, default=None, help="IVF lists (approximate)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per run")
    ap.add_argument("--out", type=str, default=None, help="write the results as JSON here")
    ap.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--save", type=str, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        res = worker(args.worker, args.n, args.d, args.k, args.save, args.nprobe, args.nlist)
        print(json.dumps(res))
        return

    os.environ.setdefault("KNNLAB_PROGRESS", "0")
    rows: list[dict] = []
    agree: dict = {}
    recall: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for m in args.methods:
                if n >= 1_000_000 and m != "knnlab-approx" and not args.exact_1e6:
                    rows.append(
                        {
                            "method": m,
                            "n": n,
                            "skipped": "exact 10^6 x 10^6 x 512 is hours on 2 cores",
                        }
                    )
                    continue
                if n < 1_000_000 and m == "knnlab-approx" and n != args.agree_n:
                    continue
                save = str(Path(tmp) / f"{m}-{n}.npy")
                rows.append(run_worker(m, n, args, save))
            ex, ap_ = Path(tmp) / f"knnlab-{n}.npy", Path(tmp) / f"knnlab-approx-{n}.npy"
            if ex.exists() and ap_.exists():
                agree[n] = agreement(np.load(ex), np.load(ap_), args.k)
            idx_path = str(ap_) + ".idx.npy"
            if Path(idx_path).exists() and args.recall_queries > 0:
                print(f"  recall@k on {args.recall_queries} queries ...", file=sys.stderr)
                recall[n] = recall_at_k(n, args.d, args.k, idx_path, args.recall_queries)
    print(f"\nk-occurrence, d = {args.d}, k = {args.k}, Gaussian data, {os.cpu_count()} CPU(s)\n")
    print(fmt_table(rows))
    for n, a in agree.items():
        print(f"\nexact vs approximate k-occurrence at N = {n:,}: " + json.dumps(a))
    for n, r in recall.items():
        print(f"\napproximate neighbour lists at N = {n:,}: " + json.dumps(r))
    if args.out:
        Path(args.out).write_text(
            json.dumps({"rows": rows, "agreement": agree, "recall": recall}, indent=2)
        )


if __name__ == "__main__":
    main()
