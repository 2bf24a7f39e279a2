"""Gaussian-denoising evaluation: PSNR and SSIM per image and mean, one table per data set and σ.

Protocol (the released N³Net evaluation, visinf/n3net ``main.py --eval``, except for the noise draw):

- images are read as gray (BT.601 luma if stored in colour) in [0, 1], float32, whole (no tiling, unless
  asked for);
- noise: ``noisy = clean + σ/255 · n`` with ``n ~ N(0, 1)`` float32 drawn on the CPU from
  ``torch.Generator().manual_seed(noise_seed(file name, seed))``, where
  ``noise_seed = (seed · 1_000_003 + crc32(file name)) mod 2⁶³``. The draw depends on the file name and
  ``seed`` only: not on σ (the same pattern, scaled; as in the released code, which reseeds once per
  run), not on the order of the images, ``--limit`` or the device. The released code draws from a CUDA
  generator seeded with 1234, which cannot be reproduced here;
- neither the noisy input nor the output is clipped or quantised (``clip_output=True`` clips the output
  to [0, 1]);
- PSNR with peak 1 over the whole image, SSIM with an 11×11 Gaussian window σ = 1.5
  (:mod:`knnlab.metrics.image`), both averaged over the images (the mean of per-image PSNRs).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from knnlab.data import add_gaussian_noise, dataset_dir, list_images, read_image
from knnlab.data.datasets import DATASETS
from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json
from knnlab.metrics import psnr, ssim
from knnlab.n3.denoise import Denoiser, load_denoiser
from knnlab.progress import progress

__all__ = [
    "PAPER_N3NET_PSNR",
    "evaluate",
    "evaluate_denoiser",
    "format_table",
    "load_eval_images",
    "make_noisy",
    "noise_seed",
]

log = logging.getLogger(__name__)

#: N³Net PSNR (dB) in the paper (Plötz & Roth 2018, Table 3), by (data set, σ).
PAPER_N3NET_PSNR: dict[tuple[str, int], float] = {
    ("Set12", 25): 30.55,
    ("Set12", 50): 27.43,
    ("Set12", 70): 25.90,
    ("BSD68", 25): 29.30,
    ("BSD68", 50): 26.39,
    ("BSD68", 70): 25.14,
    ("Urban100", 25): 30.19,
    ("Urban100", 50): 26.82,
    ("Urban100", 70): 25.15,
}


def noise_seed(name: str, seed: int = 0) -> int:
    """The seed of the noise added to the image called ``name`` (its file name) for run seed ``seed``."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (1 << 63)


def make_noisy(clean: torch.Tensor, name: str, sigma: float, seed: int = 0) -> torch.Tensor:
    """``clean + σ/255 · N(0, 1)`` with the evaluation's per-image noise (see the module docstring)."""
    gen = torch.Generator().manual_seed(noise_seed(name, seed))
    return add_gaussian_noise(clean.float().cpu(), sigma, generator=gen)


def load_eval_images(
    dataset: str | Path, limit: int | None = None
) -> tuple[str, list[tuple[str, torch.Tensor]]]:
    """``(label, [(file name, (1, H, W) gray image), ...])`` of a named data set or a folder."""
    key = str(dataset)
    if key.lower() in {d.lower() for d in DATASETS}:
        folder = dataset_dir(key)
        label = folder.name
    else:
        folder = Path(key)
        label = str(folder)
    files = list_images(folder)
    if not files:
        raise InputError(f"--dataset {key!r}: no images (PNG, JPEG, BMP, TIFF) in {str(folder)!r}")
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit {limit}: must be at least 1")
        files = files[:limit]
    return label, [(f.name, read_image(f, channels=1)) for f in files]


@torch.no_grad()
def evaluate_denoiser(
    denoiser: Denoiser,
    images: Sequence[tuple[str, torch.Tensor]],
    sigma: float,
    *,
    seed: int = 0,
    clip_output: bool = False,
    desc: str | None = None,
) -> dict[str, Any]:
    """Mean and per-image PSNR/SSIM of ``denoiser`` on ``images`` with noise of level ``sigma``."""
    rows: list[dict[str, Any]] = []
    total = 0.0
    for name, clean in progress(images, desc=desc or denoiser.name, total=len(images)):
        noisy = make_noisy(clean, name, sigma, seed)
        t0 = time.perf_counter()
        out = denoiser(noisy)
        dt = time.perf_counter() - t0
        total += dt
        if clip_output:
            out = out.clamp(0.0, 1.0)
        row = {
            "image": name,
            "psnr": float(psnr(out, clean)),
            "ssim": float(ssim(out, clean)),
            "psnr_noisy": float(psnr(noisy, clean)),
            "seconds": round(dt, 3),
        }
        log.info("%s %s: %.3f dB", denoiser.name, name, row["psnr"])
        rows.append(row)
    n = len(rows)
    return {
        "model": denoiser.name,
        "psnr": sum(r["psnr"] for r in rows) / n,
        "ssim": sum(r["ssim"] for r in rows) / n,
        "psnr_noisy": sum(r["psnr_noisy"] for r in rows) / n,
        "seconds": round(total, 2),
        "images": rows,
    }


def evaluate(
    models: Sequence[str],
    dataset: str | Path,
    sigma: float,
    *,
    seed: int = 0,
    limit: int | None = None,
    device: torch.device | str = "cpu",
    tile: int | None = None,
    clip_output: bool = False,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate every model of ``models`` (names or folders, see :func:`load_denoiser`) on ``dataset``.

    Returns (and with ``out``, writes atomically, also after each model) a dict with the protocol, the
    data set, σ and one entry per model; N³Net rows carry the paper's number where there is one.
    """
    if not models:
        raise InputError("no model to evaluate; pass --model and/or --baselines")
    denoisers = [load_denoiser(name, sigma, device=device, tile=tile) for name in models]
    label, images = load_eval_images(dataset, limit)
    n_all = len(images) if limit is None else None
    result: dict[str, Any] = {
        "protocol": f"gaussian-denoising-gray-sigma{sigma:g}-seed{seed}"
        + ("-clipped" if clip_output else ""),
        "dataset": label,
        "sigma": sigma,
        "seed": seed,
        "num_images": len(images),
        "limit": limit,
        "complete_dataset": n_all is not None,
        "noise": "clean + sigma/255 * N(0,1), CPU generator seeded with "
        "(seed*1000003 + crc32(file name)) mod 2**63; no clipping of the noisy input",
        "clip_output": clip_output,
        "tile": tile,
        "results": [],
    }
    for den in denoisers:
        for img_name, img in images:
            den.check_size(img.shape[-2], img.shape[-1], what=f"{label}/{img_name}")
        entry = evaluate_denoiser(den, images, sigma, seed=seed, clip_output=clip_output)
        paper = PAPER_N3NET_PSNR.get((label, int(sigma)))
        if den.name.startswith("n3net-official") and paper is not None:
            entry["paper_psnr"] = paper
            entry["delta_vs_paper"] = entry["psnr"] - paper
        result["results"].append(entry)
        if out is not None:
            atomic_write_json(out, result)
    return result


def format_table(result: dict[str, Any], per_image: bool = False) -> str:
    """A plain-text table of an :func:`evaluate` result."""
    head = f"{result['dataset']}  sigma={result['sigma']:g}  ({result['num_images']} images)"
    return format_rows([head], result["results"], per_image=per_image, width=32, delta_digits=2)


def format_rows(
    head: list[str],
    results: list[dict[str, Any]],
    *,
    per_image: bool = False,
    width: int = 32,
    delta_digits: int = 2,
) -> str:
    """The plain-text table of the evaluation commands: ``head`` lines, then one row per model
    (PSNR, SSIM, the paper's PSNR and the difference when known, seconds), then per image."""
    lines = [*head, f"{'model':<{width}} {'PSNR':>8} {'SSIM':>7} {'paper':>7} {'Δ':>6} {'s':>8}"]
    for e in results:
        paper = f"{e['paper_psnr']:.2f}" if "paper_psnr" in e else ""
        delta = f"{e['delta_vs_paper']:+.{delta_digits}f}" if "delta_vs_paper" in e else ""
        lines.append(
            f"{e['model']:<{width}} {e['psnr']:>8.3f} {e['ssim']:>7.4f} {paper:>7} {delta:>6} "
            f"{e['seconds']:>8.1f}"
        )
    if per_image:
        for e in results:
            lines.append(f"\n{e['model']}")
            for r in e["images"]:
                lines.append(f"  {r['image']:<30} {r['psnr']:>8.3f} {r['ssim']:>7.4f}")
    return "\n".join(lines)
