"""``knnlab data``: list, locate and download data sets."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["data"]


@click.group()
def data() -> None:
    """List, locate and download data sets.

    \b
    Data sets live under $KNNLAB_DATA (else ../shared/datasets), one folder per name:
    `knnlab data list` shows them; `knnlab data verify NAME` checks one file by file.
    """


def _count(name: str, path: Path) -> str:
    from knnlab.data.images import list_images

    if name == "MNIST":
        npz = path / "mnist.npz"
        if not npz.is_file():
            return "no mnist.npz"
        import numpy as np

        try:
            with np.load(npz, allow_pickle=False) as f:
                return f"{len(f['x_train'])} train + {len(f['x_test'])} test"
        except Exception as e:  # a broken file is reported, not raised, in a listing
            return f"unreadable ({type(e).__name__})"
    return f"{len(list_images(path))} images"


@data.command(name="list")
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data root to list (default: $KNNLAB_DATA, else ../shared/datasets).",
)
def list_(root: Path | None) -> None:
    """List the named data sets, where they resolve, and whether they are present."""
    from knnlab.data.datasets import DATASETS
    from knnlab.data.download import SOURCES
    from knnlab.paths import DATA_ENV, data_root

    base = root if root is not None else data_root(required=False)
    if base is None:
        click.echo(f"data root: not found (set ${DATA_ENV}, or pass --root)")
    else:
        click.echo(f"data root: {base}")
    rows = []
    for name in DATASETS:
        path = base / name if base is not None else None
        if path is not None and path.is_dir():
            rows.append((name, "present", _count(name, path), str(path)))
        else:
            rows.append((name, "missing", "-", str(path) if path else "-"))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        click.echo(f"  {r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}")
    extra = [s for s in SOURCES if s not in DATASETS]
    click.echo(f"also downloadable: {', '.join(extra)}  (knnlab data download NAME)")


@data.command(name="download")
@click.argument("name")
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to unpack (default: $KNNLAB_DATA, else ~/.cache/knnlab/datasets, which knnlab also "
    "searches).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def download_(name: str, root: Path | None, no_progress: bool) -> None:
    """Download and unpack data set NAME into ROOT/NAME (e.g. `knnlab data download Set12`)."""
    from knnlab.data.download import fetch_dataset
    from knnlab.paths import download_root

    base = root if root is not None else download_root()
    path = fetch_dataset(name, base, progress=not no_progress)
    click.echo(f"{name}: {path}")


@data.command(name="verify")
@click.argument("names", nargs=-1)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data root holding NAME/ (default: where `knnlab data list` finds it).",
)
@click.option("--all", "all_", is_flag=True, help="Verify every named data set that is present.")
def verify_(names: tuple[str, ...], root: Path | None, all_: bool) -> None:
    """Check data sets file by file against their committed SHA-256 manifests.

    Exit code 2 when a file differs or is missing. Files that the reference copy adds to the
    upstream ones (licence notes, pair lists) are reported when absent, not counted as errors.
    """
    from knnlab.data.datasets import DATASETS, dataset_dir, resolve_name
    from knnlab.data.manifest import verify_dataset
    from knnlab.errors import DataNotFoundError, InputError

    if all_:
        names = tuple(DATASETS)
    if not names:
        raise InputError("name a data set (e.g. `knnlab data verify Set12`) or pass --all")
    failed = []
    for name in names:
        canonical = resolve_name(name)
        try:
            folder = dataset_dir(canonical, root)
        except DataNotFoundError as e:
            if all_:
                click.echo(f"{canonical}: not present, skipped")
                continue
            raise e
        report = verify_dataset(canonical, folder)
        click.echo(("ok    " if report.ok else "FAIL  ") + report.summary())
        if not report.ok:
            failed.append(canonical)
    if failed:
        raise InputError(f"verification failed for {', '.join(failed)}")


@data.command(name="manifest", hidden=True)
@click.argument("names", nargs=-1, required=True)
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=None)
def manifest_(names: tuple[str, ...], root: Path | None) -> None:
    """(Maintainers) Write the SHA-256 manifests of NAMES from the reference copies."""
    import fnmatch

    from knnlab.data.datasets import dataset_dir, resolve_name
    from knnlab.data.download import SOURCES
    from knnlab.data.manifest import _files, write_manifest

    for name in names:
        canonical = resolve_name(name)
        folder = dataset_dir(canonical, root)
        src = SOURCES.get(canonical)
        patterns = src.derived if src is not None else ()
        derived = {f for f in _files(folder) if any(fnmatch.fnmatch(f, p) for p in patterns)}
        alternatives = {}
        if canonical == "MNIST" and src is not None and src.sha256:
            alternatives["mnist.npz"] = [src.sha256]  # the Keras file holds the same digits
        path = write_manifest(canonical, folder, derived=derived, alternatives=alternatives)
        click.echo(f"{canonical}: {path}")
