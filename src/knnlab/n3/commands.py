"""Commands of the N3 method: ``knnlab denoise``, ``knnlab eval denoise``, ``knnlab train denoise``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from knnlab.errors import InputError

__all__ = ["denoise", "eval_denoise", "train_denoise"]


def _device(name: str):
    from knnlab.devices import resolve_device

    return resolve_device(name)


def _tile(tile: int) -> int | None:
    if tile < 0:
        raise InputError(f"--tile {tile}: use a positive size, or 0 for no tiling")
    return tile or None


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output image, or a folder when INPUT is a folder (written all at once; see below).",
)
@click.option("--sigma", type=float, help="Gaussian noise level on the 0-255 scale (e.g. 25).")
@click.option(
    "--noise",
    type=click.Choice(["gaussian", "real"]),
    default="gaussian",
    show_default=True,
    help="real: camera noise, blind (noise level estimated per channel), --model n3net-real.",
)
@click.option(
    "--nlf", help="With --noise real: the noise-level function a,b instead of estimating."
)
@click.option(
    "--model",
    default=None,
    help="n3net-official[-sigma25|50|70] (default), bm3d, or a folder from `knnlab train denoise`; "
    "with --noise real: n3net-real (default) or a real-noise model folder.",
)
@click.option(
    "--tile",
    default=512,
    show_default=True,
    help="Denoise larger images in overlapping tiles of this size (bounds memory); 0: never.",
)
@click.option("--overlap", default=64, show_default=True, help="Overlap of neighbouring tiles.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def denoise(
    input_path: Path,
    output: Path,
    sigma: float | None,
    noise: str,
    nlf: str | None,
    model: str | None,
    tile: int,
    overlap: int,
    device: str,
) -> None:
    """Remove Gaussian noise of level SIGMA (or, with --noise real, camera noise) from INPUT (an image
    or a folder of images).

    Gray and RGB images of any size at or above the model's minimum (76×76 for N³Net); RGB is
    denoised channel by channel.

    \b
    The default model is the N³Net authors' published checkpoint for SIGMA (25, 50 or 70),
    licensed for non-commercial research and education only.

    \b
    Every input is read and checked before any work. A folder is all or nothing: its PNGs are
    built in a temporary sibling folder that becomes OUTPUT only when every image is done, so
    a failure or a kill leaves no half-filled OUTPUT. An OUTPUT folder of an earlier knnlab run
    is replaced whole; an existing folder holding other files is refused (choose a new or an
    empty folder).
    """
    from knnlab.data.image_job import plan_image_job
    from knnlab.n3.denoise import load_denoiser

    if overlap < 0:
        raise InputError(f"--overlap {overlap}: must be at least 0")
    job = plan_image_job(input_path, output)
    den: Any
    if noise == "real":
        from knnlab.n3.real.commands import real_denoiser

        den = real_denoiser(
            model or "n3net-real", device=_device(device), tile=_tile(tile), overlap=overlap,
            nlf=nlf,
        )  # fmt: skip
    else:
        if sigma is None:
            raise InputError("--sigma is required for Gaussian noise (or pass --noise real)")
        den = load_denoiser(
            model or "n3net-official", sigma, device=_device(device), tile=_tile(tile),
            overlap=overlap,
        )  # fmt: skip
    for src, _, img in job.items:  # fail before any work
        den.check_size(img.shape[-2], img.shape[-1], what=str(src))
    written = job.run(den, desc="denoise")
    for src, dst in written:
        click.echo(f"{src} -> {dst}")
    if job.folder:
        click.echo(f"wrote {len(written)} images to {job.output}")


@click.command(name="denoise")
@click.option(
    "--model",
    "models",
    multiple=True,
    default=("n3net-official",),
    show_default=True,
    help="n3net-official, bm3d, or a trained model folder (repeatable). "
    "dncnn: no published weights; pass a folder from `knnlab train denoise --model dncnn`.",
)
@click.option("--sigma", type=float, help="Gaussian noise level (0-255 scale).")
@click.option(
    "--dataset",
    default="Set12",
    show_default=True,
    help="BSD68, Set12, Urban100 or an image folder; PolyU or CC15 (real noise).",
)
@click.option(
    "--nlf", help="Synthetic Poisson-Gaussian noise a,b (σ² = a·x + b) instead of --sigma."
)
@click.option(
    "--baselines",
    default="",
    help="Comma-separated extra models in the same table, e.g. bm3d or bm3d,runs/dncnn.",
)
@click.option("--out", type=click.Path(path_type=Path), help="Write the results as JSON here.")
@click.option("--limit", type=int, help="Only the first N images (sorted by name).")
@click.option("--seed", default=0, show_default=True, help="Noise seed (see the protocol).")
@click.option(
    "--tile", default=0, show_default=True, help="Tile size (0: whole images, as released)."
)
@click.option("--clip-output", is_flag=True, help="Clip outputs to [0, 1] before scoring.")
@click.option("--per-image", is_flag=True, help="Also print every image's numbers.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def eval_denoise(
    models: tuple[str, ...],
    sigma: float | None,
    dataset: str,
    nlf: str | None,
    baselines: str,
    out: Path | None,
    limit: int | None,
    seed: int,
    tile: int,
    clip_output: bool,
    per_image: bool,
    device: str,
) -> None:
    """PSNR/SSIM of denoisers on a benchmark with Gaussian noise of level SIGMA (table + JSON); on
    real noisy photographs (PolyU, CC15; --model n3net-real) or with Poisson-Gaussian noise (--nlf).

    Noise is drawn per image from a seed made of --seed and the file name (the same noise for every
    model, σ-independent pattern); nothing is clipped unless --clip-output.
    """
    from knnlab.io_utils import check_writable
    from knnlab.n3.evaluate import evaluate, format_table

    if out is not None:
        check_writable(out, what="--out")
    names = list(models) + [b.strip() for b in baselines.split(",") if b.strip()]
    from knnlab.n3.real.denoise import is_real_model

    if nlf or any(map(is_real_model, names)) or dataset.lower() in ("polyu", "cc15"):
        from knnlab.n3.real.commands import eval_real

        eval_real(
            names,
            dataset,
            nlf=nlf,
            limit=limit,
            seed=seed,
            device=_device(device),
            tile=_tile(tile),
            out=out,
            per_image=per_image,
        )
        return
    if sigma is None:
        raise InputError("--sigma is required for Gaussian noise (or --nlf a,b, or a real set)")
    result = evaluate(
        names,
        dataset,
        sigma,
        seed=seed,
        limit=limit,
        device=_device(device),
        tile=_tile(tile),
        clip_output=clip_output,
        out=out,
    )
    click.echo(format_table(result, per_image=per_image))
    if out is not None:
        click.echo(f"wrote {out}")


@click.command(name="denoise")
@click.option(
    "--model",
    "arch",
    type=click.Choice(["n3net", "dncnn"]),
    default="n3net",
    show_default=True,
    help="Architecture to train.",
)
@click.option("--sigma", type=float, default=25, show_default=True, help="Noise level (0-255).")
@click.option(
    "--budget-steps",
    type=int,
    help="Stop after this many optimiser steps (the schedule is compressed to fit).",
)
@click.option(
    "--dataset",
    default="Train400",
    show_default=True,
    help="Training images: a data set name or a folder.",
)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--patch-size", type=int, default=80, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run folder (checkpoints, log, model/). Default: runs/denoise-<model>-sigma<S>.",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option(
    "--eval-dataset",
    default="Set12",
    show_default=True,
    help="Scored at the end ('' to skip).",
)
@click.option("--eval-limit", type=int, help="Score only the first N evaluation images.")
@click.option(
    "--bn-batches",
    default=32,
    show_default=True,
    help="Training batches for the final BatchNorm statistics.",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def train_denoise(
    arch: str,
    sigma: float,
    budget_steps: int | None,
    dataset: str,
    batch_size: int,
    patch_size: int,
    out: Path | None,
    resume: bool,
    eval_dataset: str,
    eval_limit: int | None,
    bn_batches: int,
    seed: int,
    device: str,
) -> None:
    """Train N³Net or DnCNN on Train400 for Gaussian noise of level SIGMA (the released recipe:
    80×80 crops, batch 32, Adam lr 1e-3 with weight decay 1e-4, lr × 10^(−3·epoch/50), 51 epochs of
    1600 iterations), then score it on --eval-dataset."""
    from knnlab.n3.training import DenoiseTrainConfig, train_denoiser

    cfg = DenoiseTrainConfig(
        model=arch,
        sigma=sigma,
        budget_steps=budget_steps,
        dataset=dataset,
        batch_size=batch_size,
        patch_size=patch_size,
        seed=seed,
        eval_dataset=eval_dataset or None,
        eval_limit=eval_limit,
        bn_batches=bn_batches,
    )
    out = out or Path(f"runs/denoise-{arch}-sigma{sigma:g}")
    summary = train_denoiser(cfg, out, resume=resume, device=_device(device))
    from knnlab.train import is_main_process

    if not is_main_process():  # under torchrun rank 0 reports
        return
    click.echo(
        f"trained {arch} for {summary['steps']} steps in {summary['seconds']:.0f} s -> {out}/model"
    )
    if summary.get("eval"):
        from knnlab.n3.evaluate import format_table

        click.echo(format_table(summary["eval"]))
