"""Demo section "bright": MNIST test digits reconstructed by the shipped tiny BRIGHT autoencoder.

The weights in ``knnlab/assets/bright_mnist/`` (config.json + model.safetensors, about 2 MB) are
reproduced by ``knnlab train bright --data MNIST --config tiny --steps 160 --batch-size 16 --seed 0``
(see ``ASSET_COMMAND``), then copying ``OUT/model/*`` there.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from knnlab.errors import KnnlabError
from knnlab.report import Report

__all__ = ["ASSET_COMMAND", "BUILTIN_DIR", "builtin_autoencoder", "section"]

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "assets" / "bright_mnist"
ASSET_COMMAND = (
    "knnlab train bright --data MNIST --config tiny --steps 160 --batch-size 16 --seed 0 "
    "-o outputs/bright_mnist && cp outputs/bright_mnist/model/* src/knnlab/assets/bright_mnist/"
)


def builtin_autoencoder(device: str | torch.device = "cpu"):
    """The shipped tiny MNIST BRIGHT autoencoder (eval mode)."""
    from knnlab.bright.autoencoder import BrightAutoencoder

    return BrightAutoencoder.from_pretrained(BUILTIN_DIR).to(device)


def section(report: Report, *, quick: bool, device: torch.device, seed: int) -> None:
    """Add the BRIGHT section to ``report`` and its numbers to ``report.results["bright"]``."""
    from knnlab.bright.data import load_image_set
    from knnlab.bright.evaluate import evaluate_autoencoder

    sec = report.section(
        "BRIGHT: key codes looked up in groups of hash tables",
        "MNIST test digits → 8×8×4 key codes in (0, 1) → four hash grids → StyleGAN2-style "
        f"decoder; the shipped tiny weights (reproduce: {ASSET_COMMAND}).",
    )
    results: dict[str, Any] = {"quick": quick, "seed": seed}
    report.results["bright"] = results
    try:
        model = builtin_autoencoder(device)
        n = 64 if quick else 500
        images = load_image_set("MNIST", "test", size=28, channels=1, limit=n)
    except KnnlabError as e:
        sec.text(f"Skipped: {e}")
        results["skipped"] = str(e)
        return
    ev = evaluate_autoencoder(model, images, device=device)
    recon = ev.pop("_recon")
    sec.images(
        [torch.cat(list(images[:8]), dim=2), torch.cat(list(recon[:8]), dim=2)],
        ["MNIST test digits", f"reconstructions ({ev['psnr']:.2f} dB mean PSNR)"],
        width=448,
    )
    row = {k: ev[k] for k in ("num_images", "psnr", "ssim", "usage_summary", "decoder_gflops")}
    sec.table([row], caption="Shipped tiny BRIGHT on MNIST test digits")
    results.update({k: v for k, v in ev.items() if not isinstance(v, torch.Tensor)})
