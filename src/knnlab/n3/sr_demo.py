"""Demo section "sr": a crop of a Set14 image at ×3, bicubic vs VDSR vs N³Net side by side."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from knnlab.errors import DataNotFoundError, KnnlabError
from knnlab.results import ExperimentResult

__all__ = ["TITLE", "section"]

TITLE = "Super-resolution ×3: N³Net vs VDSR vs bicubic"

log = logging.getLogger(__name__)

SCALE = 3
IMAGE = "img_011"  # monarch, 768×512: a crop with wing edges and texture
CROP = (192, 240, 192)  # top, left, size of the high-resolution crop (96 in --quick)


def _load(quick: bool) -> tuple[str, torch.Tensor, torch.Tensor]:
    """``(file, hr_y crop, upsampled_y crop)``; the degradation is made on the whole image."""
    from knnlab.n3.sr_eval import load_sr_benchmark

    items = [it for it in load_sr_benchmark("Set14", SCALE) if it[0].startswith(IMAGE)]
    if not items:
        raise DataNotFoundError(f"Set14 {IMAGE} is missing")
    name, hr, up = items[0]
    top, left, size = CROP
    size = 96 if quick else size
    box = (slice(None), slice(top, top + size), slice(left, left + size))
    return name, hr[box], up[box]


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """Bicubic, the shipped VDSR and N³NetSR on a Set14 crop at ×3 (table ``"sr"``, figure
    ``images.png``). Set14 missing raises :class:`~knnlab.errors.DataNotFoundError` (the demo then
    shows the section as skipped); a model that cannot load drops its row with a note."""
    from knnlab.figures import image_row
    from knnlab.metrics import psnr
    from knnlab.n3.sr_data import quantize
    from knnlab.n3.superres import load_upscaler

    name, hr, up = _load(quick)
    rows: list[dict[str, Any]] = []
    images, captions = [hr], ["high resolution"]
    notes: list[str] = []
    timings: dict[str, float] = {}
    for label, model in [("bicubic", "bicubic"), ("VDSR", "vdsr"), ("N³Net", "n3net")]:
        try:
            method = load_upscaler(model, device=device, tile=None)
        except KnnlabError as e:
            notes.append(f"{label} skipped: {e}")
            continue
        t0 = time.perf_counter()
        out = quantize(method.refine(up[None])[0])
        dt = time.perf_counter() - t0
        rows.append(
            {"method": label, "psnr": float(psnr(out, hr, shave=SCALE)), "seconds": round(dt, 2)}
        )
        timings[label] = round(dt, 2)
        images.append(out)
        captions.append(f"{label} {rows[-1]['psnr']:.2f} dB")
        log.info("sr demo: %s %.2f dB in %.1f s", label, rows[-1]["psnr"], dt)
    size = hr.shape[-1]
    res = ExperimentResult(
        "sr",
        TITLE,
        summary="A crop of a Set14 image (Y channel), the models shipped with knnlab (trained by "
        "`knnlab experiment sr` at a small CPU budget). PSNR on the crop, 3 pixels shaved.",
    )
    res.add_table(
        "sr",
        rows,
        columns=["method", "psnr", "seconds"],
        caption=f"Set14/{name}, crop of {size}×{size}, ×{SCALE}: PSNR (dB) on Y",
        notes=notes,
        labels={"psnr": "PSNR (dB)", "seconds": "time (s)"},
    )
    res.add_figure(image_row(images, captions), "images.png", caption=f"Set14/{name} ×{SCALE}")
    res.protocol = {
        "image": f"Set14/{name}",
        "crop": [CROP[0], CROP[1], size],
        "scale": SCALE,
        "quick": quick,
        "seed": seed,
    }
    res.timings = timings
    return res
