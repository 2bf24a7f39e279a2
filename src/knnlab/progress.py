"""Progress bars for long work (tqdm on stderr). ``KNNLAB_PROGRESS=0`` turns them off."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress", "progress_enabled"]

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("KNNLAB_PROGRESS", "1") not in ("0", "false", "no")


def progress(
    iterable: Iterable[T], desc: str = "", total: int | None = None, **kwargs: Any
) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar (a no-op when progress is off)."""
    if not progress_enabled():
        yield from iterable
        return
    yield from tqdm(iterable, desc=desc, total=total, dynamic_ncols=True, leave=False, **kwargs)
