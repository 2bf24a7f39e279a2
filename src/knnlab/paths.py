"""Where knnlab looks for data sets and weights.

- Data: ``$KNNLAB_DATA``, else ``../shared/datasets`` next to the current directory or the source tree.
  Data sets fetched by ``knnlab data download`` without ``$KNNLAB_DATA`` go to
  ``~/.cache/knnlab/datasets`` (:func:`download_root`), where named data-set lookups also look.
- Weights: ``$KNNLAB_WEIGHTS``, else ``../shared/weights``, likewise.
- Cache for downloads: ``$KNNLAB_CACHE``, else ``~/.cache/knnlab``.
"""

from __future__ import annotations

import os
from pathlib import Path

from knnlab.errors import DataNotFoundError

__all__ = ["cache_dir", "data_root", "download_root", "weights_root"]

DATA_ENV = "KNNLAB_DATA"
WEIGHTS_ENV = "KNNLAB_WEIGHTS"
CACHE_ENV = "KNNLAB_CACHE"

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _candidates(sub: str) -> list[Path]:
    return [Path.cwd().parent / "shared" / sub, _REPO_ROOT.parent / "shared" / sub]


def _resolve(env: str, sub: str, required: bool) -> Path | None:
    value = os.environ.get(env)
    if value:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(
                f"${env}={value!r} is not a directory; point it at the folder that holds the {sub}"
            )
        return path
    for path in _candidates(sub):
        if path.is_dir():
            return path
    if required:
        raise DataNotFoundError(
            f"no {sub} folder found: set ${env} to the folder that holds them "
            f"(looked in ../shared/{sub})"
        )
    return None


def data_root(required: bool = True) -> Path | None:
    """The folder holding named data sets (``Set12/``, ``BSD68/``, ``MNIST/mnist.npz`` ...)."""
    return _resolve(DATA_ENV, "datasets", required)


def weights_root(required: bool = True) -> Path | None:
    """The folder holding published checkpoints (``n3net-official/`` ...)."""
    return _resolve(WEIGHTS_ENV, "weights", required)


def cache_dir() -> Path:
    """Folder for downloaded files; created on demand."""
    path = Path(os.environ.get(CACHE_ENV, "~/.cache/knnlab")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def download_root(create: bool = True) -> Path:
    """Where downloaded data sets go: ``$KNNLAB_DATA`` if set, else ``~/.cache/knnlab/datasets``."""
    value = os.environ.get(DATA_ENV)
    if value:
        path = Path(value).expanduser()
    else:
        path = Path(os.environ.get(CACHE_ENV, "~/.cache/knnlab")).expanduser() / "datasets"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
