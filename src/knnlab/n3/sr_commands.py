"""Commands of N³Net super-resolution: ``knnlab sr``, ``knnlab eval sr``, ``knnlab train sr`` and
``knnlab experiment sr``."""

from __future__ import annotations

from pathlib import Path

import click

from knnlab.errors import InputError

__all__ = ["eval_sr"]


def _device(name: str):
    from knnlab.devices import resolve_device

    return resolve_device(name)


def _tile(tile: int) -> int | None:
    if tile < 0:
        raise InputError(f"--tile {tile}: use a positive size, or 0 for no tiling")
    return tile or None


def _scales(text: str) -> tuple[int, ...]:
    from knnlab.n3.sr_data import check_scale

    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"--scales {text!r}: give comma-separated integers, e.g. 2,3,4") from None
    if not values:
        raise InputError(f"--scales {text!r}: give at least one scale, e.g. 2,3,4")
    return tuple(check_scale(v, "--scales") for v in values)


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
