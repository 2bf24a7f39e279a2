"""Time and peak extra memory of the N³ aggregation: tiled ``n3_aggregate`` vs the gather oracle.

    python benchmarks/n3.py                      # CPU (1 thread), and CUDA when available
    python benchmarks/n3.py --device cpu --threads 2

Cases (k = 7, patch 10, stride 5, window 15, E = C = 8): (a) 32×8×80×80 (training batch) and
(b) 1×8×512×512 (inference). "fwd" runs under ``torch.no_grad()``; "fwd+bwd" runs the forward with
autograd and backpropagates a sum. Every measurement runs in a fresh subprocess: on CPU the peak extra
memory is the RSS high-water mark minus the RSS before the call; on CUDA it is
``torch.cuda.max_memory_allocated`` minus the memory allocated before the call.

The gather implementation needs ``B·Q·M·p²·(E+C)`` floats and more (≈ 7.5 GB per gathered tensor at
(b)); where a run would exceed ``--max-gather-gb`` it is measured at a smaller batch (a) or image (b)
and time and memory are scaled by the ratio of ``B·Q`` (both are dominated by the ``Q·M·p²`` terms);
such rows are marked ``~``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = {"a": (32, 80, 80), "b": (1, 512, 512)}
K, C, E = 7, 8, 8


def _gather_gb(b: int, h: int, w: int, backward: bool) -> float:
    from knnlab.n3.patches import PatchGrid

    g = PatchGrid(h, w)
    one = b * g.Q * g.M * 100 * max(C, E) * 4 / 1e9  # one gathered (B, Q, M, 8·p²) tensor
    return one * (4 if backward else 1.2)


def child(impl: str, b: int, h: int, w: int, mode: str, device: str, threads: int) -> dict:
    import torch

    from knnlab.n3 import n3_aggregate
    from knnlab.n3.reference import n3_aggregate_gather

    torch.set_num_threads(threads)
    fn = n3_aggregate if impl == "tiled" else n3_aggregate_gather
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, C, h, w, generator=g).to(dev)
    emb = (0.1 * torch.randn(b, E, h, w, generator=g)).to(dev)
    lt = (0.1 * torch.randn(b, 1, h, w, generator=g)).to(dev)
    bn = torch.nn.BatchNorm1d(1).to(dev)
    with torch.no_grad():  # warm up kernels on a small input
        fn(x[:1, :, :80, :80], emb[:1, :, :80, :80], lt[:1, :, :80, :80], K, distance_norm=bn)
    if mode == "fwd+bwd":
        for t in (x, emb, lt):
            t.requires_grad_()

    def run() -> None:
        if mode == "fwd":
            with torch.no_grad():
                fn(x, emb, lt, K, distance_norm=bn)
        else:
            fn(x, emb, lt, K, distance_norm=bn).sum().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    run()
    secs = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    if secs < 3:  # short: time a second run too, keep the best
        for t in (x, emb, lt):
            t.grad = None
        t0 = time.perf_counter()
        run()
        secs = min(secs, time.perf_counter() - t0)
    return {"seconds": secs, "peak_bytes": peak}


def measure(impl, case, mode, device, threads, max_gather_gb) -> dict:
    b, h, w = CASES[case]
    scale, run_b, run_h, run_w = 1.0, b, h, w
    if impl == "gather" and _gather_gb(b, h, w, mode == "fwd+bwd") > max_gather_gb:
        from knnlab.n3.patches import PatchGrid

        if b > 1:
            while run_b > 1 and _gather_gb(run_b, h, w, mode == "fwd+bwd") > max_gather_gb:
                run_b //= 2
        else:
            while _gather_gb(b, run_h, run_w, mode == "fwd+bwd") > max_gather_gb:
                run_h, run_w = run_h // 2, run_w // 2
        scale = (b * PatchGrid(h, w).Q) / (run_b * PatchGrid(run_h, run_w).Q)
    cmd = [sys.executable, __file__, "--child", impl, str(run_b), str(run_h), str(run_w), mode]
    cmd += [device, str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if res.returncode != 0:
        return {
            "error": res.stderr.strip().splitlines()[-1] if res.stderr else f"rc={res.returncode}"
        }
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["scaled_from"] = None if scale == 1.0 else f"{run_b}x{C}x{run_h}x{run_w}"
    out["seconds"] *= scale
    out["peak_bytes"] *= scale
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--cases", default="a,b")
    ap.add_argument("--max-gather-gb", type=float, default=8.0)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, b, h, w, mode, device, threads = args.child
        print(json.dumps(child(impl, int(b), int(h), int(w), mode, device, int(threads))))
        return

    import torch

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    rows = []
    print(f"N3 aggregation, k={K}, patch 10, stride 5, window 15; CPU threads={args.threads}")
    print(
        f"{'device':6} {'case':18} {'mode':8} {'impl':7} {'time [s]':>10} {'peak extra':>12}  note"
    )
    for device in devices:
        for case in args.cases.split(","):
            b, h, w = CASES[case]
            for mode in ("fwd", "fwd+bwd"):
                res = {}
                for impl in ("tiled", "gather"):
                    r = measure(impl, case, mode, device, args.threads, args.max_gather_gb)
                    res[impl] = r
                    rows.append({"device": device, "case": case, "mode": mode, "impl": impl, **r})
                    name = f"({case}) {b}x{C}x{h}x{w}"
                    if "error" in r:
                        print(
                            f"{device:6} {name:18} {mode:8} {impl:7} {'-':>10} {'-':>12}  {r['error']}"
                        )
                        continue
                    approx = "~" if r["scaled_from"] else " "
                    note = f"scaled from {r['scaled_from']}" if r["scaled_from"] else ""
                    print(
                        f"{device:6} {name:18} {mode:8} {impl:7} {approx}{r['seconds']:9.2f} "
                        f"{approx}{r['peak_bytes'] / 2**20:8.0f} MiB  {note}"
                    )
                if "error" not in res["tiled"] and "error" not in res["gather"]:
                    sp = res["gather"]["seconds"] / res["tiled"]["seconds"]
                    print(f"{'':6} {'':18} {mode:8} speed-up of tiled over gather: {sp:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
