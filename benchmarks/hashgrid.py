"""Time and peak extra memory of ``knnlab.bright.hash_grid`` against the straightforward oracle.

    python benchmarks/hashgrid.py                       # 2^20 points, d = 3, L = 16, T = 2^19
    python benchmarks/hashgrid.py --points 262144       # fewer points on a slow machine

The oracle is the per-level, per-corner PyTorch implementation of tcnn's definition kept in
``tests/bright/hashgrid_oracle.py`` (autograd for its backward). "fwd" runs under ``torch.no_grad``;
"fwd+bwd" computes gradients to the tables and the inputs of ``(out · w).sum()``. Each measurement
runs in a fresh subprocess; peak extra memory is the RSS high-water mark minus the RSS before the
call (the tables, inputs and their gradients are allocated before). Times are the process CPU
time of the best of ``--repeats`` runs (single-threaded, so on a machine shared with other jobs
this is the compute the call needs; the wall time is printed beside it). Throughput is points per
CPU second.

At 2^20 points the oracle's forward+backward needs about 11 GB; on a small machine use
``--points 262144`` (its memory and time scale linearly with the points).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(impl: str, n: int, f: int, mode: str, threads: int, repeats: int) -> dict:
    import torch

    from knnlab.bright.hashgrid import HashGridConfig, hash_grid, level_layout

    sys.path.insert(0, str(ROOT / "tests" / "bright"))
    from hashgrid_oracle import oracle_hash_grid

    torch.set_num_threads(threads)
    cfg = HashGridConfig(3, 16, f, 19, 16, 2.0)
    *_, off, size, _ = level_layout(cfg)[-1]
    g = torch.Generator().manual_seed(0)
    params = (torch.rand(off + size, f, generator=g) * 2e-4 - 1e-4).requires_grad_()
    x = torch.rand(n, 3, generator=g).requires_grad_()
    w = torch.randn(n, 16 * f, generator=g)
    params.grad = torch.zeros_like(params)
    x.grad = torch.zeros_like(x)

    def fn(a, p):
        if impl == "knnlab":
            return hash_grid(a, p, cfg)
        return oracle_hash_grid(a, p, n_levels=16, log2_t=19, n_min=16, b=2.0)

    def run() -> None:
        if mode == "fwd":
            with torch.no_grad():
                fn(x, params)
        else:
            params.grad = None
            x.grad = None
            (fn(x, params) * w).sum().backward()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, walls = [], []
    for _ in range(repeats):
        t0, w0 = time.process_time(), time.perf_counter()
        run()
        times.append(time.process_time() - t0)
        walls.append(time.perf_counter() - w0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": min(times), "wall": min(walls), "peak_mib": max(peak - base, 0) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=2**20)
    ap.add_argument("--features", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, f, mode = args.child
        res = child(impl, args.points, int(f), mode, args.threads, args.repeats)
        print(json.dumps(res))
        return
    print(
        f"hash grid, d = 3, L = 16, T = 2^19, N_min = 16, b = 2, {args.points} points, "
        f"{args.threads} thread(s)"
    )
    print("| F | mode | knnlab CPU time (wall) | knnlab Mpts/s | knnlab peak extra | "
          "oracle CPU time (wall) | oracle peak extra | speed-up | memory ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for f in args.features:
        for mode in ("fwd", "fwd+bwd"):
            res = {}
            for impl in ("knnlab", "oracle"):
                cmd = [sys.executable, __file__, "--points", str(args.points), "--threads",
                       str(args.threads), "--repeats", str(args.repeats),
                       "--child", impl, str(f), mode]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                res[impl] = json.loads(out.strip().splitlines()[-1])
            k, o = res["knnlab"], res["oracle"]
            print(
                f"| {f} | {mode} | {k['seconds']:.2f} s ({k['wall']:.1f} s) | "
                f"{args.points / k['seconds'] / 1e6:.2f} | {k['peak_mib']:.0f} MiB | "
                f"{o['seconds']:.2f} s ({o['wall']:.1f} s) | {o['peak_mib']:.0f} MiB | "
                f"{o['seconds'] / k['seconds']:.1f}× | "
                f"{k['peak_mib'] / max(o['peak_mib'], 1e-9):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
