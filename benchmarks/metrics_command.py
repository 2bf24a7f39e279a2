"""Benchmark: ``knnlab metrics`` on two folders of N MNIST digits written as PNG files.

Writes the first N test digits (REAL) and the first N training digits (FAKE) as 28x28 PNGs into a
temporary folder (``--workdir``, default under /tmp; never the repository), then runs, each in a
fresh subprocess under ``/usr/bin/time -v``::

    knnlab metrics REAL FAKE --features mnist --fid --kid --prdc --cache-dir CACHE

twice: ``cold`` (features computed, cache written) and ``cached`` (features read from the cache).
Prints wall time and peak RSS of each run. The features of a set are streamed ``--batch-size``
images at a time, so the peak RSS does not grow with N beyond the (N, 128) float32 feature matrix.

Measured here (N = 10 000, batch 100, 1 thread, a 2-core AMD EPYC shared with other jobs, load
average ~20; torch 2.13.0+cpu), ``python benchmarks/metrics_command.py``:

=========================================  ======  ============
run                                        wall s  peak RSS MiB
=========================================  ======  ============
cold (--fid --kid --prdc, features + cache)  273.0           686
cached (--fid --kid --prdc)                  156.6           686
cold, --fid only, --no-cache                 145.7           283
=========================================  ======  ============

(the third row: ``/usr/bin/time -v knnlab metrics REAL FAKE --features mnist --fid --no-cache`` on
the same folders). The 283 MiB of the ``--fid`` run is the same as for 300 images (287 MiB): streaming keeps the feature
pass flat; the ~400 MiB more of the full run is the k-NN search of P/R/D/C and KID's 1000 x 1000
kernel blocks, over the (10 000, 128) features. CPU time of the cold run: 18 s user + 8 s system
(the rest of the wall time was waiting for the shared cores).

Usage::

    python benchmarks/metrics_command.py               # N = 10 000 (~2-4 min on 2 shared cores)
    python benchmarks/metrics_command.py --n 2000 --keep
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_digits(folder: Path, images, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(images[i]).save(folder / f"{i:05d}.png")


def run(cmd: list[str], env: dict[str, str]) -> dict[str, object]:
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return {
        "wall_s": wall,
        "peak_rss_mib": int(rss.group(1)) / 1024 if rss else float("nan"),
        "stdout": p.stdout,
        "stderr": p.stderr,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="digits per folder")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the PNG folders and the cache")
    args = ap.parse_args()

    from knnlab.data import load_mnist

    work = args.workdir or Path(tempfile.mkdtemp(prefix="knnlab_metrics_bench_"))
    real, fake, cache = work / "real", work / "fake", work / "cache"
    t0 = time.perf_counter()
    x_test, _ = load_mnist("test")
    x_train, _ = load_mnist("train")
    write_digits(real, x_test.numpy(), args.n)
    write_digits(fake, x_train.numpy(), args.n)
    print(f"wrote 2 x {args.n} PNGs to {work} in {time.perf_counter() - t0:.1f} s")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "knnlab", "metrics", str(real), str(fake), "--features",
           "mnist", "--fid", "--kid", "--prdc", "--batch-size", str(args.batch_size),
           "--cache-dir", str(cache)]  # fmt: skip
    rows = [("cold", run(cmd, env)), ("cached", run(cmd, env))]
    print(rows[0][1]["stdout"])
    (work / "cold_stderr.txt").write_text(str(rows[0][1]["stderr"]))  # progress bars, time -v
    print("| run    | N per set | wall s | peak RSS MiB |")
    print("|--------|-----------|--------|--------------|")
    for name, r in rows:
        print(f"| {name:<6} | {args.n:>9} | {r['wall_s']:6.1f} | {r['peak_rss_mib']:12.0f} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
