"""Super-resolution evaluation on Set5, Set14 and B100: PSNR and SSIM on Y, per image and mean.

Protocol (VDSR's evaluation code, Kim et al. 2016, which is SRCNN's):

- high-resolution images: Set5 and Set14 from the SelfExSR pairs (``*_HR.png`` of
  ``image_SRF_<s>``, already cropped to a multiple of ``s``), B100 from ``B100/`` mod-cropped to a
  multiple of ``s``;
- Y: BT.601 luminance of the RGB image quantised to 8 bits (MATLAB ``rgb2ycbcr`` on ``uint8``); a
  gray image is its own Y;
- input: ``imresize(imresize(Y, 1/s), s)`` with the MATLAB-exact bicubic (``lr="imresize"``, the
  default), or the SelfExSR ``*_LR.png`` file's Y upsampled (``lr="file"``, Set5/Set14 only);
- output quantised to 8 bits (``uint8(im_h * 255)``), then PSNR (peak 1) and SSIM
  (:func:`knnlab.metrics.ssim`: Gaussian 11×11, σ = 1.5) with ``s`` pixels shaved from every border;
  the means are over images.

With this protocol the bicubic row lands within 0.01 dB of the published bicubic numbers on Set5 and
Set14 (the test ``tests/n3/test_sr_eval.py`` checks 0.05 dB on all three sets).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from knnlab.data import dataset_dir, imresize, list_images, read_image
from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json
from knnlab.metrics import psnr, ssim
from knnlab.n3.sr_data import SCALES, bicubic_pair, check_scale, modcrop, quantize, to_y
from knnlab.n3.superres import Upscaler, load_upscaler
from knnlab.progress import progress

__all__ = [
    "PAPER_PSNR",
    "PROTOCOL",
    "SR_DATASETS",
    "evaluate_sr",
    "evaluate_upscaler",
    "format_sr_table",
    "load_sr_benchmark",
]

log = logging.getLogger(__name__)

SR_DATASETS = ("Set5", "Set14", "B100")

#: Published PSNR (dB) on Y: VDSR paper (Kim et al. 2016, Table 2), by (method, data set, scale).
PAPER_PSNR: dict[tuple[str, str, int], float] = {
    ("bicubic", "Set5", 2): 33.66,
    ("bicubic", "Set5", 3): 30.39,
    ("bicubic", "Set5", 4): 28.42,
    ("bicubic", "Set14", 2): 30.24,
    ("bicubic", "Set14", 3): 27.55,
    ("bicubic", "Set14", 4): 26.00,
    ("bicubic", "B100", 2): 29.56,
    ("bicubic", "B100", 3): 27.21,
    ("bicubic", "B100", 4): 25.96,
    ("vdsr", "Set5", 2): 37.53,
    ("vdsr", "Set5", 3): 33.66,
    ("vdsr", "Set5", 4): 31.35,
    ("vdsr", "Set14", 2): 33.03,
    ("vdsr", "Set14", 3): 29.77,
    ("vdsr", "Set14", 4): 28.01,
    ("vdsr", "B100", 2): 31.90,
    ("vdsr", "B100", 3): 28.82,
    ("vdsr", "B100", 4): 27.29,
}

PROTOCOL = (
    "Y (BT.601, 8-bit) of the HR image; input imresize(imresize(Y, 1/s), s) (MATLAB bicubic); "
    "output rounded to 8 bits; PSNR/SSIM on Y with s pixels shaved; Set5/Set14 HR from SelfExSR, "
    "B100 mod-cropped to s"
)


def _canonical(dataset: str) -> str:
    for d in SR_DATASETS:
        if d.lower() == str(dataset).lower():
            return d
    raise InputError(f"--dataset {dataset!r}: choose one of {', '.join(SR_DATASETS)}")


def load_sr_benchmark(
    dataset: str, scale: int, *, limit: int | None = None, lr: str = "imresize"
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``[(file name, hr_y (1, H, W), upsampled_y (1, H, W)), ...]`` of a benchmark at ``scale``.

    ``lr="imresize"`` degrades the HR Y with the MATLAB-exact bicubic; ``lr="file"`` upsamples the Y of
    the SelfExSR ``*_LR.png`` (Set5 and Set14 only).
    """
    name = _canonical(dataset)
    scale = check_scale(scale)
    if lr not in ("imresize", "file"):
        raise InputError(f"lr={lr!r}: choose imresize or file")
    if name == "B100":
        if lr == "file":
            raise InputError("lr='file': B100 has no LR files; use imresize")
        files = list_images(dataset_dir("B100"))
    else:
        if scale not in SCALES:
            raise InputError(f"--scale {scale}: the SelfExSR {name} pairs exist for ×2, ×3 and ×4")
        folder = dataset_dir("SelfExSR") / name / f"image_SRF_{scale}"
        files = [f for f in list_images(folder) if f.stem.endswith("_HR")]
        if not files:
            raise InputError(
                f"--dataset {name} --scale {scale}: no SelfExSR pairs in {str(folder)!r} "
                "(SelfExSR has ×2, ×3 and ×4)"
            )
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit {limit}: must be at least 1")
        files = files[:limit]
    items = []
    for f in files:
        hr = modcrop(to_y(read_image(f)).double(), scale)
        if lr == "file":
            lr_y = to_y(read_image(f.with_name(f.name.replace("_HR", "_LR")))).double()
            up = imresize(lr_y, size=tuple(hr.shape[-2:]))
        else:
            _, _, up = bicubic_pair(hr, scale)
        items.append((f.name, hr.float(), up.float()))
    return items


@torch.no_grad()
def evaluate_upscaler(
    upscaler: Upscaler,
    items: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    scale: int,
    *,
    desc: str | None = None,
) -> dict[str, Any]:
    """Mean and per-image PSNR/SSIM of ``upscaler`` on ``items`` (see :func:`load_sr_benchmark`)."""
    rows: list[dict[str, Any]] = []
    total = 0.0
    for name, hr, up in progress(items, desc=desc or upscaler.name, total=len(items)):
        t0 = time.perf_counter()
        out = upscaler.refine(up[None])[0]
        dt = time.perf_counter() - t0
        total += dt
        out = quantize(out)
        rows.append(
            {
                "image": name,
                "psnr": float(psnr(out, hr, shave=scale)),
                "ssim": float(ssim(out, hr, shave=scale)),
                "seconds": round(dt, 3),
            }
        )
        log.info("%s %s ×%d: %.3f dB", upscaler.name, name, scale, rows[-1]["psnr"])
    n = len(rows)
    return {
        "model": upscaler.name,
        "psnr": sum(r["psnr"] for r in rows) / n,
        "ssim": sum(r["ssim"] for r in rows) / n,
        "seconds": round(total, 2),
        "images": rows,
    }


def _paper_key(name: str) -> str | None:
    key = name.lower()
    if key == "bicubic" or key == "vdsr":
        return key
    return None


def evaluate_sr(
    models: Sequence[str | Path | Upscaler],
    dataset: str,
    scale: int,
    *,
    limit: int | None = None,
    lr: str = "imresize",
    device: torch.device | str = "cpu",
    tile: int | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate every model (names, folders or :class:`Upscaler`) on ``dataset`` at ``scale``.

    Returns (and with ``out``, writes atomically after each model) the protocol, the data set, the
    scale and one entry per model; bicubic and VDSR rows carry the published PSNR.
    """
    if not models:
        raise InputError("no model to evaluate; pass --model")
    name = _canonical(dataset)
    scale = check_scale(scale)
    ups = [
        m if isinstance(m, Upscaler) else load_upscaler(m, device=device, tile=tile) for m in models
    ]
    items = load_sr_benchmark(name, scale, limit=limit, lr=lr)
    for up in ups:
        for img_name, hr, _ in items:
            up.check_size(hr.shape[-2] // scale, hr.shape[-1] // scale, scale, f"{name}/{img_name}")
    result: dict[str, Any] = {
        "protocol": f"sr-y-shave{scale}-{lr}",
        "protocol_text": PROTOCOL
        if lr == "imresize"
        else PROTOCOL.replace(
            "input imresize(imresize(Y, 1/s), s)", "input imresize(Y of the SelfExSR LR file, s)"
        ),
        "dataset": name,
        "scale": scale,
        "lr": lr,
        "num_images": len(items),
        "limit": limit,
        "complete_dataset": limit is None,
        "results": [],
    }
    for up in ups:
        entry = evaluate_upscaler(up, items, scale, desc=f"{up.name} {name} x{scale}")
        key = _paper_key(up.name)
        paper = PAPER_PSNR.get((key, name, scale)) if key else None
        if paper is not None:
            entry["paper_psnr"] = paper
            entry["delta_vs_paper"] = entry["psnr"] - paper
        result["results"].append(entry)
        if out is not None:
            atomic_write_json(out, result)
    return result


def format_sr_table(result: dict[str, Any], per_image: bool = False) -> str:
    """A plain-text table of an :func:`evaluate_sr` result (protocol line first)."""
    from knnlab.n3.evaluate import format_rows

    head = [
        f"{result['dataset']}  ×{result['scale']}  ({result['num_images']} images)",
        f"protocol: {result['protocol_text']}",
    ]
    return format_rows(head, result["results"], per_image=per_image, width=24, delta_digits=3)
