"""Loading standard feature-network weights from a file or a checksummed download.

Weights are never unpickled as arbitrary objects: ``.safetensors`` files load with safetensors, and
``.pt`` / ``.pth`` files with ``torch.load(..., weights_only=True)`` (tensors only). Downloads go to
``knnlab.paths.cache_dir()`` (``$KNNLAB_CACHE``, else ``~/.cache/knnlab``) through a temp file that
is moved into place only after its SHA-256 matches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

import torch

from knnlab.errors import DataNotFoundError, InputError

__all__ = ["download_weights", "find_weights", "load_state_dict", "resolve_weights", "sha256_file"]

log = logging.getLogger(__name__)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_hash(digest: str, expected: str, what: str) -> None:
    expected = expected.lower()
    # a full digest, or a prefix of at least 8 hex digits (torch.hub's `name-<sha256 prefix>.pth`)
    if len(expected) < 8 or not digest.startswith(expected):
        raise InputError(
            f"{what}: SHA-256 {digest} does not match the expected {expected}; the file is corrupt or "
            "not the published one. Delete it and download again, or pass the right file."
        )


def download_weights(
    url: str,
    sha256: str,
    filename: str | None = None,
    directory: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` into ``directory`` (default: the knnlab cache) unless a file with the right
    checksum is already there; verify its SHA-256 (full digest or a prefix of >= 8 hex digits)."""
    from knnlab.paths import cache_dir

    if not sha256:
        raise InputError(f"download of {url}: a sha256 checksum is required")
    dest_dir = Path(directory) if directory is not None else cache_dir() / "weights"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (filename or url.rstrip("/").rsplit("/", 1)[-1])
    if dest.is_file():
        _check_hash(sha256_file(dest), sha256, str(dest))
        return dest
    log.info("downloading %s -> %s", url, dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest_dir)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as r:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
        _check_hash(h.hexdigest(), sha256, f"download of {url}")
        os.replace(tmp, dest)
    except OSError as e:
        raise DataNotFoundError(
            f"could not download {url} ({e}); download it by hand and pass the file path instead"
        ) from e
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


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


def find_weights(filename: str, subdir: str) -> Path | None:
    """Look for ``filename`` in ``$KNNLAB_WEIGHTS/<subdir>/``, ``$KNNLAB_WEIGHTS/`` and the cache."""
    from knnlab.paths import cache_dir, weights_root

    roots: list[Path] = []
    root = weights_root(required=False)
    if root is not None:
        roots += [root / subdir, root]
    roots.append(cache_dir() / "weights")
    for r in roots:
        if (r / filename).is_file():
            return r / filename
    return None


def resolve_weights(
    weights: str | os.PathLike | None,
    *,
    filename: str,
    subdir: str,
    url: str,
    sha256: str,
    what: str,
    download: bool = False,
) -> Path:
    """Path of a network's weights: ``weights`` as a file path or an http(s) URL (downloaded and
    checked against ``sha256``); ``None`` looks in the usual places, then downloads ``url`` only if
    ``download`` is true. Raises a :class:`DataNotFoundError` that says how to get them."""
    if weights is not None:
        s = str(weights)
        if s.startswith(("http://", "https://")):
            return download_weights(s, sha256, filename=filename)
        p = Path(s).expanduser()
        if not p.is_file():
            raise DataNotFoundError(f"{what} weights: file {p} not found")
        return p
    found = find_weights(filename, subdir)
    if found is not None:
        return found
    if download:
        return download_weights(url, sha256, filename=filename)
    raise DataNotFoundError(
        f"{what} weights not found: put {filename} in $KNNLAB_WEIGHTS/{subdir}/ (from {url}, "
        f"sha256 {sha256}...), pass weights=<path or URL>, or allow download=True"
    )
