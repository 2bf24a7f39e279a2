"""Demo section "denoise": a Set12 image with Gaussian noise (σ = 25), BM3D and N³Net side by side."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from knnlab.errors import KnnlabError
from knnlab.results import ExperimentResult

__all__ = ["TITLE", "section"]

log = logging.getLogger(__name__)

SIGMA = 25
IMAGE = "05.png"  # Monarch, 256×256
TITLE = "Denoising: N³Net vs BM3D"


def _load_clean(quick: bool) -> tuple[str, torch.Tensor]:
    from knnlab.data import dataset_dir, read_image

    path = dataset_dir("Set12") / IMAGE
    clean = read_image(path, channels=1)
    if quick:  # a 128×128 centre crop
        h, w = clean.shape[-2:]
        clean = clean[:, (h - 128) // 2 : (h + 128) // 2, (w - 128) // 2 : (w + 128) // 2]
    return IMAGE, clean


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """PSNR/SSIM of BM3D and the published N³Net on one noisy Set12 image (table ``"denoise"``,
    figure ``images.png``). Set12 missing raises :class:`~knnlab.errors.DataNotFoundError`; a
    missing bm3d package or N³Net checkpoint drops that row with a note."""
    from knnlab.figures import image_row
    from knnlab.metrics import psnr, ssim
    from knnlab.n3.denoise import load_denoiser
    from knnlab.n3.evaluate import make_noisy
    from knnlab.n3.pretrained import resolve_official_checkpoint

    name, clean = _load_clean(quick)
    noisy = make_noisy(clean, name, SIGMA, seed)
    rows: list[dict[str, Any]] = [
        {
            "method": "noisy input",
            "psnr": float(psnr(noisy, clean)),
            "ssim": float(ssim(noisy, clean)),
            "seconds": 0.0,
        }
    ]
    images, captions = [clean, noisy.clamp(0, 1)], ["clean", f"noisy {rows[0]['psnr']:.2f} dB"]
    notes = []

    methods: list[tuple[str, str]] = []
    try:
        import bm3d  # noqa: F401

        methods.append(("BM3D", "bm3d"))
    except ImportError:
        notes.append("BM3D skipped: the bm3d package is not installed (pip install bm3d).")
    try:
        resolve_official_checkpoint(SIGMA, download=False)
        methods.append(("N³Net (published σ=25)", "n3net-official"))
    except KnnlabError as e:
        notes.append(f"N³Net skipped: the published checkpoint is not available locally ({e}).")

    timings: dict[str, float] = {}
    for label, model in methods:
        den = load_denoiser(model, SIGMA, device=device, tile=None)
        t0 = time.perf_counter()
        out = den(noisy)
        dt = time.perf_counter() - t0
        row = {
            "method": label,
            "psnr": float(psnr(out, clean)),
            "ssim": float(ssim(out, clean)),
            "seconds": round(dt, 2),
        }
        rows.append(row)
        timings[label] = round(dt, 2)
        images.append(out.clamp(0, 1))
        captions.append(f"{label} {row['psnr']:.2f} dB")
        log.info("denoise demo: %s %.2f dB in %.1f s", label, row["psnr"], dt)

    size = f"{clean.shape[-2]}×{clean.shape[-1]}"
    res = ExperimentResult(
        "denoise",
        TITLE,
        summary=f"Gaussian noise σ = {SIGMA} on a Set12 image; the published N³Net checkpoint "
        "(Plötz & Roth 2018; non-commercial licence) against BM3D.",
    )
    res.add_table(
        "denoise",
        rows,
        columns=["method", "psnr", "ssim", "seconds"],
        caption=f"Set12/{name} ({size}), σ = {SIGMA}: PSNR (dB), SSIM",
        notes=notes,
        labels={"psnr": "PSNR (dB)", "ssim": "SSIM", "seconds": "time (s)"},
    )
    res.add_figure(
        image_row(images, captions), "images.png", caption=f"Set12/{name} ({size}), σ = {SIGMA}"
    )
    res.protocol = {
        "image": f"Set12/{name}",
        "size": list(clean.shape[-2:]),
        "sigma": SIGMA,
        "quick": quick,
        "seed": seed,
        "device": str(device),
    }
    res.timings = timings
    return res
