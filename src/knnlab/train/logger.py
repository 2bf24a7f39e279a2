"""Run logs: one JSON object per line (``log.jsonl``), plus TensorBoard when it is installed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from knnlab.io_utils import atomic_write_text

__all__ = ["JSONLLogger", "TensorBoardLogger", "read_jsonl", "tensorboard_available"]


def _clean(v: Any) -> Any:
    if hasattr(v, "item") and getattr(v, "numel", lambda: 1)() == 1:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # "nan" / "inf": keep the line valid JSON
    return v


class JSONLLogger:
    """Append records to a JSONL file, one flushed line per :meth:`log` call.

    With ``resume_step`` set, lines from a killed run with ``step > resume_step`` are dropped
    first, so the file reads like one uninterrupted run.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        elif resume_step is None and self.path.exists():
            self.path.unlink()  # a fresh run starts a fresh log
        self._f = open(self.path, "a", encoding="utf-8")  # closed in close()

    def _truncate_after(self, step: int) -> None:
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if int(rec.get("step", 0)) <= step:
                keep.append(json.dumps(rec))
        atomic_write_text(self.path, "".join(k + "\n" for k in keep))

    def log(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> JSONLLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record in a JSONL log."""
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def tensorboard_available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # ImportError, or a broken tensorboard install
        return False
    return True


class TensorBoardLogger:
    """Scalars to TensorBoard; every method is a no-op when tensorboard is not installed."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self._w: Any = None
        if tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self._w = SummaryWriter(log_dir=str(log_dir))

    @property
    def enabled(self) -> bool:
        return self._w is not None

    def log(self, record: dict[str, Any], step: int) -> None:
        if self._w is None:
            return
        for k, v in record.items():
            v = _clean(v)
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool):
                self._w.add_scalar(k, v, step)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None
