"""Where knnlab looks for data sets and weights.

- Data: ``$KNNLAB_DATA``, else ``../shared/datasets`` next to the current directory or the source tree,
  else ``~/.cache/knnlab/datasets`` (where ``knnlab data download`` puts data sets by default).
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
    cache = Path(os.environ.get(CACHE_ENV, "~/.cache/knnlab")).expanduser() / sub
    return [Path.cwd().parent / "shared" / sub, _REPO_ROOT.parent / "shared" / sub, cache]


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
            f"(looked in ../shared/{sub} and ~/.cache/knnlab/{sub}; `knnlab data download NAME` "
            f"fetches public data sets)"
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


def download_root() -> Path:
    """Where downloaded data sets go: ``$KNNLAB_DATA`` if set, else ``~/.cache/knnlab/datasets``."""
    value = os.environ.get(DATA_ENV)
    path = Path(value).expanduser() if value else cache_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path
