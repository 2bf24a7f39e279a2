"""Atomic writes: a reader never sees a half-written file (write to a temp file, then os.replace)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_MARKER",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_writable",
    "json_safe",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Check, before any long work, that a file can be written atomically at ``path``: its folder
    exists or can be made, and a temp file can be created there. Raises
    :class:`~knnlab.errors.InputError` naming ``what`` (e.g. ``"-o"``) otherwise."""
    from knnlab.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{what} {str(path)!r}: cannot write there ({e.strerror or e})") from e
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON; NaN and ±inf are written as ``null`` (JSON has no NaN)."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def json_safe(obj: Any) -> Any:
    """``obj`` as plain JSON data: numpy/torch values as numbers and lists, paths as strings, and
    every non-finite float (NaN, ±inf) as ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, str | int | bool) or obj is None:
        return obj
    return json_safe(_json_default(obj))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy and torch scalars and arrays
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


#: Written into every folder :func:`atomic_dir` finishes; only such folders are ever replaced.
RUN_MARKER = ".knnlab-run"


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder's content in a sibling temp folder; on success it *becomes* ``path``.

    A finished ``path`` holds exactly this run's files: an earlier run's folder is replaced whole,
    never merged into. On an exception nothing in ``path`` changes and the temp folder is removed;
    temp folders that a killed run left behind are removed by the next run into the same place.

    To protect a user's files, an existing non-empty folder that knnlab did not write (it has no
    :data:`RUN_MARKER`) is refused with :class:`~knnlab.errors.InputError`.
    """
    from knnlab.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"output {str(path)!r} is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / RUN_MARKER).exists():
        raise InputError(
            f"output folder {str(path)!r} holds files that knnlab did not write; it would be "
            "replaced as a whole, so choose a new or empty folder"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        tmp = Path(
            tempfile.mkdtemp(
                prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent
            )
        )
    except OSError as e:
        raise InputError(f"cannot write output folder {str(path)!r} ({e.strerror or e})") from e
    try:
        yield tmp
        (tmp / RUN_MARKER).write_text(
            "written by knnlab; this folder is replaced by the next run\n"
        )
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():
            old = tmp.with_suffix(".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(path: Path) -> None:
    """Remove ``.NAME.PID.*.partial`` / ``.old`` siblings whose process is gone."""
    for item in path.parent.glob(f".{path.name}.*.*"):
        parts = item.name[len(path.name) + 2 :].split(".")
        if len(parts) < 3 or parts[-1] not in ("partial", "old") or not parts[0].isdigit():
            continue
        if not _alive(int(parts[0])):
            shutil.rmtree(item, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
