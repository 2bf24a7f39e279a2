"""Forward time and peak extra memory of CNNet vs N3CNNet on one batch of putative matches.

    python benchmarks/corr.py                          # N = 2000, batch 32, 1 CPU thread
    python benchmarks/corr.py --batch 4 --repeats 3    # a smaller batch on a busy machine

Released sizes (12 blocks of 128 channels; N3CNNet: k = 3 after block 6); ``n3cnnet-m32`` restricts
each match's candidates to its 32 nearest in the embedding (``N3CNNetConfig.candidates``);
``n3cnnet-shipped`` is the trained N3CNNet of ``knnlab experiment corr`` (``assets/n3cnnet``), whose
positive, sharper inverse temperatures differ from those of a freshly initialised network. "fwd" runs under
``torch.no_grad()`` in eval mode; "fwd+bwd" runs a training-mode forward and backpropagates a sum.
Every measurement runs in a fresh subprocess; the peak extra memory is that of the first full-size
call: the RSS high-water mark minus the RSS before it (CPU) or ``torch.cuda.max_memory_allocated``
minus the memory before (CUDA); the times are the minimum over the following calls.
Goal (issue 11): N3CNNet within 2× of CNNet.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def child(model: str, b: int, n: int, mode: str, device: str, threads: int, repeats: int) -> dict:
    import torch

    from knnlab.n3.cnnet import CNNet, N3CNNet, N3CNNetConfig

    torch.set_num_threads(threads)
    dev = torch.device(device)
    if model == "cnnet":
        net: torch.nn.Module = CNNet()
    elif model == "n3cnnet-shipped":
        from knnlab.n3.corr_experiment import ASSET_DIR

        net = N3CNNet.from_pretrained(ASSET_DIR)
    else:  # "n3cnnet" (all other matches, as released) or "n3cnnet-mM" (the M nearest only)
        m = int(model.split("-m")[1]) if "-m" in model else None
        net = N3CNNet(N3CNNetConfig(candidates=m))
    net = net.to(dev)
    x = (0.3 * torch.randn(b, n, 4, generator=torch.Generator().manual_seed(0))).to(dev)

    def run() -> None:
        if mode == "fwd":
            net.eval()
            with torch.no_grad():
                net(x)
        else:
            net.train()
            net(x).sum().backward()
            net.zero_grad(set_to_none=True)

    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    run()  # the first full-size call: peak memory, and the warm-up of the allocator
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(repeats):  # timed in steady use
        t0 = time.perf_counter()
        run()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "peak_mb": peak / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="matches per pair")
    ap.add_argument("--batch", type=int, default=32, help="pairs per batch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (the minimum is reported)")
    ap.add_argument("--modes", default="fwd,fwd+bwd")
    ap.add_argument(
        "--models", default="cnnet,n3cnnet,n3cnnet-shipped,n3cnnet-m32",
        help="cnnet, n3cnnet (released: all other matches), n3cnnet-shipped (trained weights), "
        "n3cnnet-mM (the M nearest only)",
    )  # fmt: skip
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        r = child(a.child[0], a.batch, a.n, a.child[1], a.device, a.threads, a.repeats)
        print(json.dumps(r))
        return
    print(f"N = {a.n}, batch {a.batch}, device {a.device}, {a.threads} thread(s), "
          f"min of {a.repeats}")  # fmt: skip
    print(f"{'mode':<8} {'model':<16} {'time (s)':>9} {'peak MB':>9} {'× CNNet':>8}")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    for mode in a.modes.split(","):
        base = None
        for model in a.models.split(","):
            cmd = [sys.executable, __file__, "--child", model, mode, "--n", str(a.n),
                   "--batch", str(a.batch), "--device", a.device, "--threads", str(a.threads),
                   "--repeats", str(a.repeats)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = base or r["seconds"]
            print(f"{mode:<8} {model:<16} {r['seconds']:>9.2f} {r['peak_mb']:>9.0f} "
                  f"{r['seconds'] / base:>8.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
