"""Loading standard feature-network weights from a file, the weights folders or a checksummed
download, through :mod:`knnlab.hub` (one downloader, one registry, full SHA-256 everywhere).

Weights are never unpickled as arbitrary objects: ``.safetensors`` files load with safetensors, and
``.pt`` / ``.pth`` files with ``torch.load(..., weights_only=True)`` (tensors only).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from knnlab.errors import DataNotFoundError, InputError
from knnlab.hub import (
    DownloadError,
    WeightsEntry,
    download,
    sha256_file,
    verify_file,
)
from knnlab.hub import (
    resolve_weights as resolve_named_weights,
)

__all__ = ["download_weights", "feature_weights", "load_state_dict", "sha256_file"]

log = logging.getLogger(__name__)


def download_weights(
    url: str,
    sha256: str,
    filename: str | None = None,
    directory: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` into ``directory`` (default: the knnlab cache's ``weights/``) unless a file
    with the right checksum is already there; ``sha256`` is the full digest (64 hex digits)."""
    from knnlab.paths import cache_dir

    if not sha256 or len(sha256) != 64:
        raise InputError(
            f"download of {url}: a full sha256 (64 hex digits) is required, got {sha256!r}"
        )
    dest_dir = Path(directory) if directory is not None else cache_dir() / "weights"
    dest = dest_dir / (filename or url.rstrip("/").rsplit("/", 1)[-1])
    try:
        return download(url, dest, sha256=sha256, progress=True, timeout=timeout)
    except DownloadError as e:
        raise DataNotFoundError(
            f"could not download {url} ({e}); download it by hand and pass the file path instead"
        ) from e


def feature_weights(
    entry: WeightsEntry,
    weights: str | os.PathLike | None,
    *,
    sha256: str | None,
    download: bool,
) -> Path:
    """The verified weights of a feature network.

    ``weights``: ``None`` (the registry entry: weights folders, cache, then a download if
    ``download``), a file path, or an http(s) URL. Files and downloads are checked against ``sha256``
    (default: the entry's published digest); ``sha256=None`` with an explicit file skips the check,
    for weights of your own.
    """
    if weights is None:
        if sha256 is not None and sha256 != entry.sha256:
            raise InputError(f"{entry.name}: sha256={sha256!r} differs from the published digest")
        return resolve_named_weights(entry, download=download)
    text = str(weights)
    if text.startswith(("http://", "https://")):
        return download_weights(text, sha256 or entry.sha256, filename=entry.filename)
    path = Path(text).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"{entry.name} weights: file {path} not found")
    if sha256 is not None:
        verify_file(path, sha256, f"{entry.name} weights")
    return path


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a ``.pt``/``.pth`` state dict (``weights_only``);
    a checkpoint that wraps the state dict under ``state_dict``/``model``/``net`` is unwrapped."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"weights file {p} not found")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(
            f"{p}: not a tensors-only PyTorch state dict ({type(e).__name__}: {e}); "
            "knnlab does not unpickle arbitrary objects"
        ) from e
    for key in ("state_dict", "model", "net"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise InputError(f"{p}: expected a dict of tensors, got {type(obj).__name__}")
    return obj
