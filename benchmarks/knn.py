"""All-vs-all kNN benchmark: ``knnlab.knn.search`` vs faiss ``IndexFlatL2`` vs ``torch.cdist`` + topk.

    python benchmarks/knn.py                      # N = 10 000 and 100 000, d = 512, k = 5
    python benchmarks/knn.py --sizes 2000,10000 --dim 128 --k 10 --device cuda

Every measurement runs in a fresh subprocess so that peak memory is its own: the increase of the
peak resident set size (``VmHWM``, reset through ``/proc/self/clear_refs`` after the data is made)
over the resident size before the call; on CUDA, ``torch.cuda.max_memory_allocated``. Each method
searches the same seeded Gaussian data with ``exclude_self`` semantics (faiss and cdist search
``k + 1`` and drop the query itself). The ``agree`` column is the fraction of neighbour indices equal
to the ``knnlab (torch)`` result (random data has no ties, so exact methods give 1.000).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()

METHODS = ["knnlab-torch", "knnlab-faiss", "knnlab-auto", "faiss-IndexFlatL2", "torch-cdist-topk"]
# knnlab-auto is one of the two knnlab backends (printed in the header), so it is not run twice
DEFAULT_METHODS = ["knnlab-torch", "knnlab-faiss", "faiss-IndexFlatL2", "torch-cdist-topk"]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    rows = np.arange(idx.shape[0])[:, None]
    keep = idx != rows
    # where self is absent (duplicates), drop the last column instead
    keep[~(~keep).any(1), -1] = False
    return idx[keep].reshape(idx.shape[0], -1)[:, :k]


def worker(method: str, n: int, d: int, k: int, device: str, seed: int, out: str) -> None:
    import faiss
    import torch

    from knnlab.knn import search

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    # warm-up (thread pools, BLAS) on a small problem, outside the measurement
    small = x[: min(n, 512)]
    faiss.knn(small, small, 2)
    search(torch.from_numpy(small), torch.from_numpy(small), 1, backend="torch")
    xt = torch.from_numpy(x).to(device)
    cuda = xt.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    reset_ok = _reset_peak()
    rss0 = _status_kib("VmRSS")
    c0 = time.process_time()
    t0 = time.perf_counter()
    if method.startswith("knnlab-"):
        _, i = search(xt, xt, k, exclude_self=True, backend=method.split("-", 1)[1])
        if cuda:
            torch.cuda.synchronize()
        idx = i.cpu().numpy()
    elif method == "faiss-IndexFlatL2":
        index = faiss.IndexFlatL2(d)
        index.add(x)
        _, i = index.search(x, k + 1)
        idx = _drop_self(i, k)
    elif method == "torch-cdist-topk":
        dist = torch.cdist(xt, xt).square_()
        dist.fill_diagonal_(float("inf"))
        _, i = torch.topk(dist, k, dim=1, largest=False)
        if cuda:
            torch.cuda.synchronize()
        idx = i.cpu().numpy()
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = (
        (torch.cuda.max_memory_allocated() - base) / 2**20
        if cuda
        else (_status_kib("VmHWM") - rss0) / 1024
    )
    np.save(out, idx)
    print(
        json.dumps(
            {"seconds": seconds, "cpu": cpu, "peak_mib": peak, "peak_exact": reset_ok or cuda}
        )
    )


def machine(device: str) -> str:
    import faiss
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"machine: {cpu}, {os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}), "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"faiss {faiss.__version__} with {faiss.omp_get_max_threads()} threads",
    ]
    if device.startswith("cuda") and torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name(0)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sizes", default="10000,100000", help="comma-separated N (default 10000,100000)"
    )
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated subset of " + ", ".join(METHODS),
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--max-matrix-gb",
        type=float,
        default=None,
        help="skip cdist above this size (default: half of RAM)",
    )
    ap.add_argument("--_worker", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._worker:
        m, n, d, k, dev, seed, out = args._worker
        worker(m, int(n), int(d), int(k), dev, int(seed), out)
        return

    import torch

    from knnlab.knn import core

    sizes = [int(s) for s in args.sizes.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if args.device.startswith("cuda"):
        ram = torch.cuda.get_device_properties(0).total_memory
    limit = args.max_matrix_gb * 1e9 if args.max_matrix_gb else ram / 2
    print(machine(args.device))
    auto = core._pick_backend(
        torch.device(args.device), max(sizes), max(sizes), args.dim, all_vs_all=True
    )
    print(
        f"all-vs-all, exclude_self, d={args.dim}, k={args.k}, device={args.device}; "
        f"knnlab memory budget {core.DEFAULT_MEMORY_BUDGET / 2**20:.0f} MiB; auto -> {auto}"
    )
    header = (
        f"{'N':>8}  {'method':<18} {'time (s)':>9} {'vs faiss':>8} {'cpu (s)':>8} {'vs faiss':>8} "
        f"{'peak mem (MiB)':>14} {'agree':>6}  note"
    )
    print(header)
    print("-" * len(header))
    # faiss first (the reference for the ratios), knnlab-torch next (the reference for agreement)
    order = {"faiss-IndexFlatL2": 0, "knnlab-torch": 1}
    methods.sort(key=lambda m: order.get(m, 2))
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            ref: np.ndarray | None = None
            base: dict[str, float] = {}
            for m in methods:
                need = n * n * 4
                if m == "torch-cdist-topk" and need > limit:
                    skip = f"skipped: the {n}x{n} float32 matrix needs {need / 1e9:.1f} GB"
                    print(
                        f"{n:>8}  {m:<18} {'-':>9} {'':>8} {'-':>8} {'':>8} {'-':>14} {'-':>6}  {skip}"
                    )
                    continue
                out = os.path.join(tmp, f"{m}-{n}.npy")
                cmd = [sys.executable, str(HERE), "--_worker", m, str(n), str(args.dim)]
                cmd += [str(args.k), args.device, str(args.seed), out]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"{n:>8}  {m:<18} failed: {tail[:100]}", flush=True)
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                idx = np.load(out)
                if m == "knnlab-torch":
                    ref = idx
                elif m == "faiss-IndexFlatL2":
                    base = res
                agree = f"{float((idx == ref).mean()):.3f}" if ref is not None else "-"
                rel = f"{res['seconds'] / base['seconds']:.2f}x" if base else ""
                rel_cpu = f"{res['cpu'] / base['cpu']:.2f}x" if base else ""
                note = "" if res["peak_exact"] else "peak incl. data (no clear_refs)"
                print(
                    f"{n:>8}  {m:<18} {res['seconds']:>9.2f} {rel:>8} {res['cpu']:>8.2f} "
                    f"{rel_cpu:>8} {res['peak_mib']:>14.0f} {agree:>6}  {note}",
                    flush=True,
                )
    print(
        "time: wall clock; cpu: process CPU time (user + sys, all threads); agree: fraction of "
        "indices equal to knnlab-torch (faiss is run first, so its own row shows '-')."
    )


if __name__ == "__main__":
    main()
