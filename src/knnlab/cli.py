"""The ``knnlab`` command line. Each method's commands live beside the method (``n3/commands.py``,
``hubness/commands.py``, ``data/commands.py``) and are attached here; this file owns the groups,
the demo and the error handling (one line, non-zero exit, no traceback for user errors)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from knnlab import __version__
from knnlab.errors import KnnlabError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="knnlab")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """knnlab: nearest-neighbour methods for image restoration and generation.

    \b
    Start with `knnlab demo`, which runs every method on built-in defaults and writes an HTML
    report. Data sets are looked up under $KNNLAB_DATA (else ../shared/datasets), published
    weights under $KNNLAB_WEIGHTS (else ../shared/weights).
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.group()
def train() -> None:
    """Train a model (denoisers, the built-in GAN...)."""


@cli.group(name="eval")
def eval_() -> None:
    """Evaluate a model on a benchmark and print/write a table."""


@cli.group()
def sample() -> None:
    """Sample images from a generative model (key-code diffusion ...)."""


@cli.group()
def experiment() -> None:
    """Run a paper's experiment end to end (tables and figures)."""


@cli.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/demo"),
    show_default=True,
    help="Output folder for report.html and results.json.",
)
@click.option("--quick", is_flag=True, help="Smaller sizes everywhere (a smoke run in seconds).")
@click.option(
    "--only", multiple=True, help="Run only these sections (repeatable), e.g. --only knn."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, help="Seed for every random draw.")
def demo(out: Path, quick: bool, only: tuple[str, ...], device: str, seed: int) -> None:
    """Run every method on built-in defaults; write OUT/report.html and OUT/results.json.

    Each section's results and figures go to OUT/<section>/ (the layout of every experiment); a
    section whose data or weights are missing says "skipped: <reason>" in the report."""
    from knnlab.demo import SECTIONS, run_demo

    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        raise KnnlabError(f"--only {unknown}: unknown section; choose from {sorted(SECTIONS)}")
    html_path, json_path = run_demo(out, quick=quick, only=only, device=device, seed=seed)
    click.echo(f"wrote {html_path} and {json_path}")


@cli.command(name="report")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--title", default="knnlab report", show_default=True, help="Title of the report.")
def report_cmd(folders: tuple[Path, ...], out: Path, title: str) -> None:
    """Render experiment output folders (results.json + figures) into one self-contained HTML file.

    \b
    FOLDERS are what `knnlab experiment ...` writes, or the OUT/<section>/ folders of `knnlab
    demo`; each becomes one section, in the order given.
    """
    from knnlab.io_utils import atomic_write_text
    from knnlab.report import Report

    report = Report(title)
    for folder in folders:
        report.add_experiment(folder)
    try:
        atomic_write_text(out, report.to_html())
    except OSError as e:
        raise KnnlabError(f"--out {str(out)!r}: cannot write ({e.strerror or e})") from e
    click.echo(f"wrote {out} ({len(folders)} sections)")


def _attach() -> None:
    from knnlab.bright.commands import eval_bright, experiment_bright, train_bright
    from knnlab.bright.ldm_commands import experiment_bright_generation, sample_bright
    from knnlab.data.commands import data
    from knnlab.hubness.commands import experiment_hubness, train_gan
    from knnlab.metrics.commands import metrics, train_features
    from knnlab.n3.commands import denoise, eval_denoise, train_denoise
    from knnlab.n3.corr_commands import eval_corr, experiment_corr, match, train_corr
    from knnlab.n3.real.commands import experiment_real_noise
    from knnlab.n3.sr_commands import eval_sr, experiment_sr, sr, train_sr

    cli.add_command(data)
    cli.add_command(denoise)
    cli.add_command(sr)
    train.add_command(train_denoise)
    train.add_command(train_sr)
    train.add_command(train_gan)
    train.add_command(train_features)
    cli.add_command(metrics)
    eval_.add_command(eval_denoise)
    eval_.add_command(eval_sr)
    experiment.add_command(experiment_hubness)
    sample.add_command(sample_bright)
    experiment.add_command(experiment_real_noise)
    train.add_command(train_bright)
    eval_.add_command(eval_bright)
    experiment.add_command(experiment_bright)
    experiment.add_command(experiment_bright_generation)
    cli.add_command(match)
    train.add_command(train_corr)
    eval_.add_command(eval_corr)
    experiment.add_command(experiment_corr)
    experiment.add_command(experiment_sr)


_attach()


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns user errors into one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, prog_name="knnlab", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except KnnlabError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
