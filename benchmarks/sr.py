"""Inference time and peak extra memory of VDSR and N³NetSR on one 512×512 Y image.

    python benchmarks/sr.py                      # CPU (1 thread), and CUDA when available
    python benchmarks/sr.py --device cpu --threads 2 --repeats 3

Freshly initialised models at their default sizes (VDSR: 20 layers of 64; N³NetSR: 3 × VDSR-7 with
2 N³ blocks, k = 7), whole image, ``torch.no_grad()``. Each measurement runs in a fresh subprocess:
on CPU the peak extra memory is the RSS high-water mark minus the RSS before the call; on CUDA it is
``torch.cuda.max_memory_allocated`` minus the memory allocated before. The time is the best of
``--repeats`` runs after one warm-up run. FLOPs (``torch.utils.flop_counter``: convolutions and
matrix products, the N³ blocks' distance and aggregation products included) are counted on a
128×128 crop and scaled to the image. Goal: N³NetSR within 1.5× of VDSR's time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODELS = ("vdsr", "n3net")


def child(model: str, size: int, device: str, threads: int, repeats: int) -> dict:
    import torch

    from knnlab.n3.sr_training import build_sr_model

    torch.set_num_threads(threads)
    dev = torch.device(device)
    torch.manual_seed(0)
    net = build_sr_model(model).to(dev).eval()
    x = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0)).to(dev)

    def run() -> None:
        with torch.no_grad():
            net(x)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if dev.type == "cuda":
        run()  # warm-up (kernels, allocator)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    from torch.utils.flop_counter import FlopCounterMode

    small = x[..., :128, :128]  # FLOPs scale with the pixels: counted on a crop, scaled up
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(small)
    return {
        "seconds": min(times),
        "peak_bytes": peak,
        "params": sum(p.numel() for p in net.parameters()),
        "gflops": counter.get_total_flops() * (size * size) / (128 * 128) / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        model, size, device, threads, repeats = args.child
        print(json.dumps(child(model, int(size), device, int(threads), int(repeats))))
        return

    import torch

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    print(f"super-resolution inference, 1×1×{args.size}×{args.size} Y; CPU threads={args.threads}")
    print(
        f"{'device':6} {'model':8} {'params':>9} {'GFLOPs':>8} {'time [s]':>10} {'peak extra':>12} "
        f"{'× VDSR':>7} {'FLOPs × VDSR':>13}"
    )
    rows = []
    for dev in devices:
        base_t = base_f = None
        for model in MODELS:
            cmd = [sys.executable, __file__, "--child", model, str(args.size), dev,
                   str(args.threads), str(args.repeats)]  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if res.returncode != 0:
                err = res.stderr.strip().splitlines()[-1] if res.stderr else f"rc={res.returncode}"
                print(f"{dev:6} {model:8} error: {err}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            if model == "vdsr":
                base_t, base_f = r["seconds"], r["gflops"]
            ratio = r["seconds"] / base_t if base_t else float("nan")
            f_ratio = r["gflops"] / base_f if base_t else float("nan")
            rows.append({"device": dev, "model": model, **r, "ratio_vs_vdsr": ratio,
                         "flops_ratio_vs_vdsr": f_ratio})  # fmt: skip
            print(
                f"{dev:6} {model:8} {r['params']:>9} {r['gflops']:>8.1f} {r['seconds']:>10.3f} "
                f"{r['peak_bytes'] / 2**20:>10.1f} MB {ratio:>7.2f} {f_ratio:>13.2f}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
