"""How well the noise-level-function estimator reads real photographs: estimated vs true noise.

For each ``*_real`` / ``*_mean`` pair of PolyU and CC15, per RGB channel: the true noise standard
deviation (of ``real − mean``, 0–255 scale) and the estimator's ``σ(m)`` at the channel's mean ``m``
(``scale=2``, as blind denoising uses it, and ``scale=1``). Prints a table and the median ratio.

    python benchmarks/nlf_real.py [--limit N]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    from knnlab.n3.real.evaluate import load_pairs
    from knnlab.n3.real.nlf import estimate_nlf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10, help="evenly spaced pairs per set")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'set':<6} {'image':<42} {'true σ':>7} {'est s=2':>8} {'est s=1':>8}")
    for ds in ("PolyU", "CC15"):
        ratios: dict[int, list[float]] = {1: [], 2: []}
        _, pairs = load_pairs(ds, args.limit)
        for name, noisy, clean in pairs:
            true = float((noisy - clean).double().std(dim=(1, 2)).mean()) * 255
            est = {}
            for s in (2, 1):
                sig = [
                    float(estimate_nlf(noisy[c], scale=s).sigma(float(noisy[c].mean())))
                    for c in range(3)
                ]
                est[s] = float(np.mean(sig)) * 255
                ratios[s].append(est[s] / true)
            print(f"{ds:<6} {name[:42]:<42} {true:>7.2f} {est[2]:>8.2f} {est[1]:>8.2f}")
        print(
            f"{ds}: median estimated/true σ: scale 2 {np.median(ratios[2]):.2f}, "
            f"scale 1 {np.median(ratios[1]):.2f} over {len(pairs)} images"
        )


if __name__ == "__main__":
    main()
