"""Demo section "real-noise": one PolyU crop, noisy, blind BM3D, the shipped N³Net-real, ground truth."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from knnlab.errors import KnnlabError
from knnlab.results import ExperimentResult

__all__ = ["TITLE", "section"]

log = logging.getLogger(__name__)

TITLE = "Real camera noise: N³Net-real vs BM3D"


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """One PolyU crop denoised blind by BM3D and the shipped N³Net-real (table ``"real-noise"``,
    figure ``images.png``). PolyU missing raises :class:`~knnlab.errors.DataNotFoundError` (the
    demo shows the section as skipped); a method that cannot run drops its row with a note."""
    from knnlab.figures import image_row
    from knnlab.metrics import psnr, ssim
    from knnlab.n3.real.evaluate import load_pairs, make_method

    _, pairs = load_pairs("PolyU", 1)
    name, noisy, clean = pairs[0]
    side = 128 if quick else 256
    h, w = noisy.shape[-2:]
    sl = (
        slice(None),
        slice((h - side) // 2, (h + side) // 2),
        slice((w - side) // 2, (w + side) // 2),
    )
    noisy, clean = noisy[sl].contiguous(), clean[sl].contiguous()
    image = f"PolyU/{name} centre {side}×{side}"
    rows: list[dict[str, Any]] = [
        {
            "method": "noisy input",
            "psnr": float(psnr(noisy, clean)),
            "ssim": float(ssim(noisy, clean)),
            "seconds": 0.0,
        }
    ]
    images, captions = [noisy], [f"noisy {rows[0]['psnr']:.2f} dB"]
    notes: list[str] = []
    timings: dict[str, float] = {}
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
        timings[label] = round(dt, 2)
        images.append(out)
        captions.append(f"{label} {rows[-1]['psnr']:.2f} dB")
        log.info("real-noise demo: %s %.2f dB in %.1f s", label, rows[-1]["psnr"], dt)
    images.append(clean)
    captions.append("ground truth (mean)")
    res = ExperimentResult(
        "real-noise",
        TITLE,
        summary="A real noisy photograph of PolyU (its ground truth is the mean of many shots), "
        "denoised blind: the noise-level function is estimated per RGB channel, then BM3D (σ from "
        "it) and the shipped N³Net-real (trained by `knnlab experiment real-noise --ship`) run "
        "per channel.",
    )
    res.add_table(
        "real-noise",
        rows,
        columns=["method", "psnr", "ssim", "seconds"],
        caption=f"{image}: PSNR (dB), SSIM over RGB",
        notes=notes,
        labels={"psnr": "PSNR (dB)", "ssim": "SSIM", "seconds": "time (s)"},
    )
    res.add_figure(image_row(images, captions), "images.png", caption=image)
    res.protocol = {"image": image, "quick": quick, "seed": seed, "device": str(device)}
    res.timings = timings
    return res
