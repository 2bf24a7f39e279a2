"""Commands of N³Net super-resolution: ``knnlab sr``, ``knnlab eval sr``, ``knnlab train sr`` and
``knnlab experiment sr``."""

from __future__ import annotations

from pathlib import Path

import click

from knnlab.errors import InputError
from knnlab.n3.commands import _device, _tile  # the option helpers of the n3 commands

__all__ = ["eval_sr", "experiment_sr", "sr", "train_sr"]


def _scales(text: str, option: str = "--scales") -> tuple[int, ...]:
    from knnlab.n3.sr_data import check_scale

    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"{option} {text!r}: give comma-separated integers, e.g. 2,3,4") from None
    if not values:
        raise InputError(f"{option} {text!r}: give at least one scale, e.g. 2,3,4")
    return tuple(check_scale(v, option) for v in values)


@click.command(name="sr")
@click.option(
    "--model",
    "models",
    multiple=True,
    default=("bicubic",),
    show_default=True,
    help="bicubic, vdsr, n3net (the shipped weights) or a folder from `knnlab train sr` (repeatable).",
)
@click.option(
    "--dataset", default="Set5", show_default=True, help="Set5, Set14 or B100 (Y channel)."
)
@click.option("--scale", type=int, default=4, show_default=True, help="2, 3 or 4.")
@click.option(
    "--lr",
    "lr_source",
    type=click.Choice(["imresize", "file"]),
    default="imresize",
    show_default=True,
    help="Input: bicubic imresize of the HR Y, or the SelfExSR LR file (Set5/Set14).",
)
@click.option("--limit", type=int, help="Only the first N images (sorted by name).")
@click.option("--out", type=click.Path(path_type=Path), help="Write the results as JSON here.")
@click.option("--per-image/--mean-only", default=True, show_default=True)
@click.option("--tile", default=0, show_default=True, help="Tile size (0: whole images).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def eval_sr(
    models: tuple[str, ...],
    dataset: str,
    scale: int,
    lr_source: str,
    limit: int | None,
    out: Path | None,
    per_image: bool,
    tile: int,
    device: str,
) -> None:
    """PSNR/SSIM on Y of super-resolution at SCALE on a benchmark (VDSR's protocol; table + JSON).

    HR Y in 8 bits, LR by MATLAB-exact bicubic, output rounded to 8 bits, SCALE pixels shaved.
    """
    from knnlab.n3.sr_eval import evaluate_sr, format_sr_table

    result = evaluate_sr(
        list(models),
        dataset,
        scale,
        limit=limit,
        lr=lr_source,
        device=_device(device),
        tile=_tile(tile),
        out=out,
    )
    click.echo(format_sr_table(result, per_image=per_image))
    if out is not None:
        click.echo(f"wrote {out}")


@click.command(name="sr")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output image, or a folder when INPUT is a folder.",
)
@click.option("--scale", type=int, default=4, show_default=True, help="Upscaling factor (2-8).")
@click.option(
    "--model",
    default="n3net",
    show_default=True,
    help="n3net or vdsr (the shipped weights), bicubic, or a folder from `knnlab train sr`.",
)
@click.option(
    "--tile",
    default=512,
    show_default=True,
    help="Process larger outputs in overlapping tiles of this size (bounds memory); 0: never.",
)
@click.option("--overlap", default=64, show_default=True, help="Overlap of neighbouring tiles.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def sr(
    input_path: Path,
    output: Path,
    scale: int,
    model: str,
    tile: int,
    overlap: int,
    device: str,
) -> None:
    """Upscale INPUT (an image or a folder of images) by SCALE.

    Gray or RGB images of any size; the luminance goes through the network and the chroma is
    upsampled bicubically. The default model is the N³Net trained by `knnlab experiment sr`
    (×2, ×3 and ×4 in one model; other factors work but were not trained).

    \b
    Every input is read and checked before any work. A folder is all or nothing: OUTPUT appears
    only when every image is done; an OUTPUT folder of an earlier knnlab run is replaced whole,
    a folder holding other files is refused.
    """
    from knnlab.data.image_job import plan_image_job
    from knnlab.n3.sr_data import check_scale
    from knnlab.n3.superres import load_upscaler

    scale = check_scale(scale)
    job = plan_image_job(input_path, output)
    up = load_upscaler(model, device=_device(device), tile=_tile(tile), overlap=overlap)
    for src, _, img in job.items:  # fail before any work
        if img.shape[0] not in (1, 3):
            raise InputError(f"{src}: {img.shape[0]} channels; give a gray or RGB image")
        up.check_size(img.shape[-2], img.shape[-1], scale, what=str(src))
    written = job.run(lambda img: up.upscale(img, scale), desc=f"sr x{scale}")
    for src, dst in written:
        click.echo(f"{src} -> {dst}")
    if job.folder:
        click.echo(f"wrote {len(written)} images to {job.output}")


@click.command(name="sr")
@click.option(
    "--model",
    "arch",
    type=click.Choice(["n3net", "vdsr"]),
    default="n3net",
    show_default=True,
    help="Architecture to train: N3NetSR or VDSR (20 layers).",
)
@click.option("--scales", default="2,3,4", show_default=True, help="Scales trained together.")
@click.option(
    "--budget-steps",
    type=int,
    help="Stop after this many optimiser steps (the schedule is compressed to fit).",
)
@click.option(
    "--budget-minutes",
    type=float,
    help="Or: as many steps as fit in this time (measured on a few steps first).",
)
@click.option("--steps", type=int, default=60_000, show_default=True, help="Full-length run.")
@click.option("--batch-size", type=int, default=30, show_default=True, help="Crops per step.")
@click.option("--patch-size", type=int, default=80, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run folder (checkpoints, log, model/). Default: runs/sr-<model>.",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--eval-dataset", default="Set5", show_default=True, help="'' to skip.")
@click.option("--eval-limit", type=int, help="Score only the first N evaluation images.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def train_sr(
    arch: str,
    scales: str,
    budget_steps: int | None,
    budget_minutes: float | None,
    steps: int,
    batch_size: int,
    patch_size: int,
    lr: float,
    out: Path | None,
    resume: bool,
    eval_dataset: str,
    eval_limit: int | None,
    seed: int,
    device: str,
) -> None:
    """Train N³Net or VDSR for super-resolution at all --scales together on T91 + Train400 (Y),
    then score it on --eval-dataset (Adam, gradient clipping, lr stepped down every quarter)."""
    from knnlab.n3.sr_eval import format_sr_table
    from knnlab.n3.sr_training import SRTrainConfig
    from knnlab.n3.sr_training import train_sr as run

    cfg = SRTrainConfig(
        model=arch,
        scales=_scales(scales),
        budget_steps=budget_steps,
        budget_minutes=budget_minutes,
        steps=steps,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        seed=seed,
        eval_dataset=eval_dataset or None,
        eval_limit=eval_limit,
    )
    out = out or Path(f"runs/sr-{arch}")
    summary = run(cfg, out, resume=resume, device=_device(device))
    click.echo(
        f"trained {arch} for {summary['steps']} steps in {summary['seconds']:.0f} s -> {out}/model"
    )
    for ev in summary.get("eval", []):
        click.echo(format_sr_table(ev))


@click.command(name="sr")
@click.option(
    "--budget-steps",
    type=int,
    help="Optimiser steps of each model (the schedule is compressed to fit); default: full run.",
)
@click.option(
    "--budget-minutes",
    type=float,
    help="Or: the same training minutes for each model (steps measured on this machine).",
)
@click.option(
    "--parallel/--sequential",
    default=False,
    show_default=True,
    help="Train the two models at the same time, each on half the CPU threads.",
)
@click.option("--steps", type=int, default=60_000, show_default=True, help="Full-length run.")
@click.option("--batch-size", type=int, default=30, show_default=True, help="Crops per step.")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option("--scales", default="2,3,4", show_default=True)
@click.option("--datasets", default="Set5,Set14,B100", show_default=True, help="Evaluation sets.")
@click.option(
    "--eval-scales",
    default="",
    help="Evaluate only these of the trained scales (several processes can share the work).",
)
@click.option("--limit", type=int, help="Score only the first N images of each set.")
@click.option(
    "--runs",
    type=click.Path(path_type=Path),
    default=Path("runs/experiment-sr"),
    show_default=True,
    help="Training runs (resumed) and the evaluation cache.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/experiment-sr"),
    show_default=True,
    help="Output folder (results.json + figure).",
)
@click.option(
    "--assets",
    type=click.Path(path_type=Path),
    help="Also copy the trained models to ASSETS/n3net_sr and ASSETS/vdsr_sr "
    "(src/knnlab/assets reproduces the shipped weights).",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def experiment_sr(
    budget_steps: int | None,
    budget_minutes: float | None,
    parallel: bool,
    steps: int,
    batch_size: int,
    lr: float,
    scales: str,
    datasets: str,
    eval_scales: str,
    limit: int | None,
    runs: Path,
    out: Path,
    assets: Path | None,
    seed: int,
    device: str,
) -> None:
    """Train VDSR and N³Net for super-resolution at the same budget and write the table
    (bicubic, VDSR, N³Net × Set5, Set14, B100 × ×2, ×3, ×4, with the published numbers)."""
    from knnlab.n3.sr_experiment import SRExperimentConfig, run_sr_experiment
    from knnlab.results import write_experiment

    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    cfg = SRExperimentConfig(
        budget_steps=budget_steps,
        budget_minutes=budget_minutes,
        parallel=parallel,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        scales=_scales(scales),
        eval_scales=_scales(eval_scales, "--eval-scales") if eval_scales.strip() else None,
        datasets=names,
        limit=limit,
        seed=seed,
        runs_dir=str(runs),
        assets=str(assets) if assets else None,
    )
    from knnlab.io_utils import check_writable

    check_writable(Path(out) / "results.json", what="--out")  # before hours of training
    res = run_sr_experiment(cfg, device=_device(device))
    path = write_experiment(out, res)
    table = res.table("psnr")
    cols = table.columns or list(table.rows[0])
    click.echo(" | ".join(cols))
    for r in table.rows:
        click.echo(" | ".join("" if r.get(c) is None else str(r[c]) for c in cols))
    click.echo(res.summary)
    click.echo(f"wrote {path}")
