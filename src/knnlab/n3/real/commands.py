"""Real-noise commands: ``knnlab experiment real-noise``, and the ``--noise real`` paths of ``knnlab
denoise`` and ``knnlab eval denoise`` (called from :mod:`knnlab.n3.commands`)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from knnlab.errors import InputError

__all__ = ["eval_real", "experiment_real_noise", "parse_nlf", "real_denoiser"]


def parse_nlf(text: str) -> tuple[float, float]:
    """``"0.01,1e-4"`` → ``(0.01, 0.0001)``; one line naming ``--nlf`` otherwise."""
    try:
        a, b = (float(t) for t in text.split(","))
    except ValueError:
        raise InputError(
            f"--nlf {text!r}: give two numbers a,b (σ² = a·x + b), e.g. 0.01,1e-4"
        ) from None
    if not (math.isfinite(a) and math.isfinite(b) and a >= 0 and b >= 0):
        raise InputError(f"--nlf {text!r}: a and b must be finite and >= 0")
    return a, b


class _BlindDenoiser:
    """What ``knnlab denoise --noise real`` runs on each image: the noise-level function estimated
    per channel (or the given ``--nlf``), then the real-noise model; says the levels it used."""

    def __init__(self, den, given) -> None:
        self.den, self.given = den, given

    def check_size(self, h: int, w: int, what: str) -> None:
        if min(h, w) < self.den.min_size:
            raise InputError(
                f"{what} is {h}×{w}; {self.den.name} needs at least "
                f"{self.den.min_size}×{self.den.min_size} pixels; pad or upscale it"
            )

    def __call__(self, img):
        from knnlab.n3.real.nlf import NoiseLevelFunction

        fs = (
            [NoiseLevelFunction(*self.given)] * img.shape[0]
            if self.given
            else self.den.estimate(img)
        )
        click.echo("noise level " + ", ".join(f"a={f.a:.3g} b={f.b:.3g}" for f in fs), err=True)
        return self.den(img, fs).clamp(0, 1)


def real_denoiser(model: str, *, device, tile: int | None, overlap: int, nlf: str | None):
    """The blind real-noise denoiser of ``knnlab denoise --noise real`` (``check_size`` + call)."""
    from knnlab.n3.real.denoise import load_real_denoiser

    given = parse_nlf(nlf) if nlf else None
    den = load_real_denoiser(model, device=device, tile=tile, overlap=overlap)
    return _BlindDenoiser(den, given)


def eval_real(
    models: list[str],
    dataset: str,
    *,
    nlf: str | None,
    limit: int | None,
    seed: int,
    device,
    tile: int | None,
    out: Path | None,
    per_image: bool,
) -> None:
    """``knnlab eval denoise`` on a real set, or with ``--nlf a,b`` synthetic Poisson–Gaussian noise."""
    from knnlab.io_utils import atomic_write_json
    from knnlab.n3.real.evaluate import evaluate_real, format_real_table

    pg = parse_nlf(nlf) if nlf else None
    oracle = [m for m in models if m not in ("noisy", "bm3d", "n3net-official")] if pg else []
    result = evaluate_real(
        ["noisy", *models],
        dataset,
        nlf=pg,
        limit=limit,
        seed=seed,
        oracle=oracle,
        device=device,
        tile=tile,
    )
    click.echo(format_real_table(result, per_image=per_image))
    if out is not None:
        atomic_write_json(out, result)
        click.echo(f"wrote {out}")


@click.command(name="real-noise")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/real-noise"),
    show_default=True,
    help="Output folder (results.json + figures).",
)
@click.option("--steps", default=60, show_default=True, help="Training steps of each model.")
@click.option("--batch-size", default=8, show_default=True)
@click.option(
    "--preset",
    type=click.Choice(["cpu", "code-default", "released"]),
    default="cpu",
    show_default=True,
    help="Model size of both networks.",
)
@click.option(
    "--runs",
    "runs_dir",
    default="runs/real-noise",
    show_default=True,
    help="Training run folders (resumed when present).",
)
@click.option(
    "--polyu-limit",
    type=int,
    default=4,
    show_default=True,
    help="Evenly spaced PolyU images (0: all 100).",
)
@click.option(
    "--cc15-limit", type=int, default=3, show_default=True, help="CC15 images (0: all 15)."
)
@click.option(
    "--bsd68-limit",
    type=int,
    default=2,
    show_default=True,
    help="BSD68 images for the synthetic rows (0: all 68).",
)
@click.option(
    "--crop",
    type=int,
    default=256,
    show_default=True,
    help="Score the centre CROP×CROP of every image (0: whole images).",
)
@click.option(
    "--ship", is_flag=True, help="Copy the trained N³Net-real to knnlab/assets/n3net_real."
)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def experiment_real_noise(
    out: Path,
    steps: int,
    batch_size: int,
    preset: str,
    runs_dir: str,
    polyu_limit: int,
    cc15_limit: int,
    bsd68_limit: int,
    crop: int,
    ship: bool,
    seed: int,
    device: str,
) -> None:
    """Train N³Net-real and DnCNN-real at equal budget and compare them with blind BM3D and the
    published Gaussian N³Net on PolyU, CC15 and synthetic Poisson–Gaussian BSD68.

    \b
    The shipped n3net-real weights are reproduced by
        knnlab experiment real-noise --ship
    """
    from knnlab.devices import resolve_device
    from knnlab.n3.real.experiment import RealNoiseExperimentConfig, run_real_noise
    from knnlab.results import write_experiment

    for name, v in (("--steps", steps), ("--batch-size", batch_size)):
        if v < 1:
            raise InputError(f"{name} {v}: must be at least 1")
    cfg = RealNoiseExperimentConfig(
        preset=preset,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        runs_dir=runs_dir,
        polyu_limit=polyu_limit or None,
        cc15_limit=cc15_limit or None,
        bsd68_limit=bsd68_limit or None,
        crop=crop or None,
        ship=ship,
    )
    res = run_real_noise(cfg, device=resolve_device(device))
    path = write_experiment(out, res)
    for t in res.tables:
        if t.name == "per_image":
            continue
        click.echo(f"\n{t.caption}")
        for r in t.rows:
            click.echo(
                f"  {r['method']:<40} {r['PSNR']:>8.3f} {r['SSIM']:>7.4f} {r['seconds']:>8.1f}"
            )
    click.echo(f"wrote {path}")
