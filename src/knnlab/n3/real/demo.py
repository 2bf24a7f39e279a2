"""Demo section "real-noise": one PolyU crop, noisy, blind BM3D, the shipped N³Net-real, ground truth."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from knnlab.errors import KnnlabError
from knnlab.report import Report

__all__ = ["section"]

log = logging.getLogger(__name__)


def section(report: Report, *, quick: bool, device: torch.device, seed: int) -> None:
    """Add the real-noise section to ``report`` and its numbers to ``report.results["real-noise"]``."""
    from knnlab.metrics import psnr, ssim
    from knnlab.n3.real.evaluate import load_pairs, make_method

    sec = report.section(
        "Real camera noise: N³Net-real vs BM3D",
        "A real noisy photograph of PolyU (its ground truth is the mean of many shots), denoised "
        "blind: the noise-level function is estimated per RGB channel, then BM3D (σ from it) and "
        "the shipped N³Net-real (trained by `knnlab experiment real-noise --ship`) run per channel.",
    )
    results: dict[str, Any] = {"quick": quick, "seed": seed}
    report.results["real-noise"] = results
    try:
        _, pairs = load_pairs("PolyU", 1)
    except KnnlabError as e:
        sec.text(f"Skipped: the PolyU images are not available ({e}).")
        results["skipped"] = str(e)
        return
    name, noisy, clean = pairs[0]
    side = 128 if quick else 256
    h, w = noisy.shape[-2:]
    sl = (
        slice(None),
        slice((h - side) // 2, (h + side) // 2),
        slice((w - side) // 2, (w + side) // 2),
    )
    noisy, clean = noisy[sl].contiguous(), clean[sl].contiguous()
    results["image"] = f"PolyU/{name} centre {side}×{side}"
    rows = [
        {
            "method": "noisy input",
            "psnr": float(psnr(noisy, clean)),
            "ssim": float(ssim(noisy, clean)),
            "seconds": 0.0,
        }
    ]
    images, captions = [noisy], [f"noisy {rows[0]['psnr']:.2f} dB"]
    notes: list[str] = []
    for label, m in (("BM3D (estimated σ)", "bm3d"), ("N³Net-real", "n3net-real")):
        try:
            _, fn = make_method(m, device=device, nlf_scale=2)
        except KnnlabError as e:
            notes.append(f"{label} skipped: {e}")
            continue
        t0 = time.perf_counter()
        out = fn(noisy, None).clamp(0, 1)
        dt = time.perf_counter() - t0
        rows.append(
            {
                "method": label,
                "psnr": float(psnr(out, clean)),
                "ssim": float(ssim(out, clean)),
                "seconds": round(dt, 2),
            }
        )
        images.append(out)
        captions.append(f"{label} {rows[-1]['psnr']:.2f} dB")
        log.info("real-noise demo: %s %.2f dB in %.1f s", label, rows[-1]["psnr"], dt)
    images.append(clean)
    captions.append("ground truth (mean)")
    sec.images(images, captions, width=side)
    sec.table(
        rows,
        columns=["method", "psnr", "ssim", "seconds"],
        caption=f"{results['image']}: PSNR (dB), SSIM over RGB",
    )
    for note in notes:
        sec.text(note)
    results["rows"] = rows
    if notes:
        results["notes"] = notes
