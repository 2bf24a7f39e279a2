"""Demo section "bright": MNIST test digits reconstructed by the shipped tiny BRIGHT autoencoder.

The weights in ``knnlab/assets/bright_mnist/`` (config.json + model.safetensors, about 2 MB) are
reproduced by ``knnlab train bright --data MNIST --config tiny --steps 160 --batch-size 16 --seed 0``
(see ``ASSET_COMMAND``), then copying ``OUT/model/*`` there.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from knnlab.errors import DataNotFoundError
from knnlab.results import ExperimentResult

__all__ = ["ASSET_COMMAND", "BUILTIN_DIR", "TITLE", "builtin_autoencoder", "section"]

TITLE = "BRIGHT: key codes looked up in groups of hash tables"

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "assets" / "bright_mnist"
ASSET_COMMAND = (
    "knnlab train bright --data MNIST --config tiny --steps 160 --batch-size 16 --seed 0 "
    "-o outputs/bright_mnist && cp outputs/bright_mnist/model/* src/knnlab/assets/bright_mnist/"
)


def builtin_autoencoder(device: str | torch.device = "cpu"):
    """The shipped tiny MNIST BRIGHT autoencoder (eval mode)."""
    from knnlab.bright.autoencoder import BrightAutoencoder

    if not (BUILTIN_DIR / "model.safetensors").is_file():
        raise DataNotFoundError(
            f"the shipped BRIGHT weights are missing from {BUILTIN_DIR}; rebuild them: {ASSET_COMMAND}"
        )
    return BrightAutoencoder.from_pretrained(BUILTIN_DIR).to(device)


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """Reconstructions of MNIST test digits by the shipped tiny BRIGHT (table ``"bright"``, figure
    ``reconstructions.png``). MNIST or the weights missing raise
    :class:`~knnlab.errors.DataNotFoundError` (the demo then shows the section as skipped)."""
    from knnlab.bright.data import load_image_set
    from knnlab.bright.evaluate import evaluate_autoencoder
    from knnlab.figures import image_row

    model = builtin_autoencoder(device)
    n = 64 if quick else 500
    images = load_image_set("MNIST", "test", size=28, channels=1, limit=n)
    ev = evaluate_autoencoder(model, images, device=device)
    recon = ev.pop("_recon")
    res = ExperimentResult(
        "bright",
        TITLE,
        summary="MNIST test digits → 8×8×4 key codes in (0, 1) → four hash grids → StyleGAN2-style "
        f"decoder; the shipped tiny weights (reproduce: {ASSET_COMMAND}).",
    )
    row = {k: ev[k] for k in ("num_images", "psnr", "ssim", "usage_summary", "decoder_gflops")}
    res.add_table(
        "bright",
        [row],
        caption="Shipped tiny BRIGHT on MNIST test digits",
        labels={"psnr": "PSNR (dB)", "ssim": "SSIM", "decoder_gflops": "decoder GFLOPs"},
    )
    res.add_figure(
        image_row(
            [torch.cat(list(images[:8]), dim=2), torch.cat(list(recon[:8]), dim=2)],
            ["MNIST test digits", f"reconstructions ({ev['psnr']:.2f} dB mean PSNR)"],
        ),
        "reconstructions.png",
        caption="Top: MNIST test digits; bottom: their BRIGHT reconstructions",
    )
    res.protocol = {"images": f"MNIST test, first {n}", "quick": quick, "seed": seed}
    res.data = {k: v for k, v in ev.items() if not isinstance(v, torch.Tensor)}
    return res
