"""What an experiment leaves behind, in one layout for every method.

Every ``knnlab experiment X`` returns an :class:`ExperimentResult` and writes it with
:func:`write_experiment` into its output folder::

    OUT/
      results.json     tables, protocol, machine, timings, raw data (JSON, NaN written as null)
      *.png            the figures named in results.json
      ...              anything else the experiment wants to keep (models, logs), listed in "files"

The HTML report renders any such folder (:meth:`knnlab.report.Report.add_experiment`), so that
``knnlab demo`` and a later ``knnlab reproduce`` gather experiments without knowing their insides.

Example::

    res = ExperimentResult("sr", "N3Net super-resolution", summary="...")
    res.add_table("psnr", rows, columns=["method", "Set5 x2"], caption="PSNR (dB), Y, shave = scale")
    res.add_figure(fig, "crops.png", caption="Set14 crop at x3")   # a matplotlib Figure or PNG bytes
    res.protocol["scales"] = [2, 3, 4]
    res.timings["train_vdsr_s"] = 3612.0
    write_experiment("outputs/sr", res)
"""

from __future__ import annotations

import io
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knnlab.errors import InputError
from knnlab.io_utils import atomic_dir, atomic_write_bytes, atomic_write_json, json_safe

__all__ = [
    "RESULTS_NAME",
    "ExperimentResult",
    "Figure",
    "Table",
    "json_safe",
    "machine_info",
    "read_experiment",
    "write_experiment",
]

RESULTS_NAME = "results.json"
#: The version of the results.json layout (bumped when a field changes meaning).
LAYOUT_VERSION = 1


@dataclass
class Table:
    """A table as data: ``rows`` are dicts, ``columns`` picks and orders their keys, ``labels``
    gives some of them a header other than the key (units, the feature space of a metric)."""

    name: str
    rows: list[dict[str, Any]]
    columns: list[str] | None = None
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cols = self.columns or (list(self.rows[0]) if self.rows else [])
        return {
            "name": self.name,
            "caption": self.caption,
            "columns": cols,
            "rows": self.rows,
            "notes": self.notes,
            "labels": self.labels,
        }


@dataclass
class Figure:
    """A figure file (PNG) in the output folder, with its caption."""

    file: str
    caption: str = ""


@dataclass
class ExperimentResult:
    """Tables, figures, protocol, timings and machine of one experiment run."""

    experiment: str
    title: str
    summary: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=lambda: machine_info())
    data: dict[str, Any] = field(default_factory=dict)
    #: file name -> bytes, written beside results.json by :func:`write_experiment`
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: why the experiment did not run (missing data or weights); None when it ran
    skipped: str | None = None

    @classmethod
    def skip(cls, experiment: str, title: str, reason: str) -> ExperimentResult:
        """The result of an experiment that could not run: no tables, the reason in ``skipped``
        (the report renders it as a one-line "skipped: <reason>" note)."""
        return cls(experiment, title, skipped=str(reason))

    def add_table(
        self,
        name: str,
        rows: list[dict[str, Any]],
        columns: list[str] | None = None,
        caption: str = "",
        notes: list[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Table:
        table = Table(
            name,
            list(rows),
            list(columns) if columns else None,
            caption,
            notes or [],
            dict(labels or {}),
        )
        self.tables.append(table)
        return table

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"no table {name!r}; have {[t.name for t in self.tables]}")

    def add_figure(self, fig: Any, file: str, caption: str = "", dpi: int = 110) -> Figure:
        """Keep a figure as ``file`` (PNG): a matplotlib Figure (closed afterwards) or PNG bytes."""
        _check_name(file)
        if isinstance(fig, bytes | bytearray):
            png = bytes(fig)
        else:
            import matplotlib.pyplot as plt

            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
            plt.close(fig)
            png = buf.getvalue()
        self.files[file] = png
        figure = Figure(file, caption)
        self.figures.append(figure)
        return figure

    def add_file(self, file: str, content: bytes) -> None:
        """Keep any other file beside results.json (a log, a small array)."""
        _check_name(file)
        self.files[file] = content

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": LAYOUT_VERSION,
            "experiment": self.experiment,
            "title": self.title,
            "summary": self.summary,
            "tables": [t.to_dict() for t in self.tables],
            "figures": [{"file": f.file, "caption": f.caption} for f in self.figures],
            "protocol": self.protocol,
            "timings": self.timings,
            "machine": self.machine,
            "data": self.data,
            "files": sorted(self.files),
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ExperimentResult:
        return cls(
            experiment=raw["experiment"],
            title=raw.get("title", raw["experiment"]),
            summary=raw.get("summary", ""),
            tables=[
                Table(
                    t["name"],
                    t["rows"],
                    t.get("columns"),
                    t.get("caption", ""),
                    t.get("notes", []),
                    t.get("labels", {}),
                )
                for t in raw.get("tables", [])
            ],
            figures=[Figure(f["file"], f.get("caption", "")) for f in raw.get("figures", [])],
            protocol=raw.get("protocol", {}),
            timings=raw.get("timings", {}),
            machine=raw.get("machine", {}),
            data=raw.get("data", {}),
            skipped=raw.get("skipped"),
        )


def _check_name(file: str) -> None:
    if not file or "/" in file or "\\" in file or file.startswith(".") or file == RESULTS_NAME:
        raise InputError(f"file name {file!r}: use a plain name such as 'figure.png' (no folders)")


def machine_info() -> dict[str, Any]:
    """The machine an experiment ran on: processor, cores, torch and its device."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def write_experiment(out: str | os.PathLike, result: ExperimentResult) -> Path:
    """Write ``results.json`` and the result's files into ``out``, atomically as a whole.

    ``out`` ends up holding exactly this run's files (see :func:`knnlab.io_utils.atomic_dir`).
    Returns the path of results.json.
    """
    out = Path(out)
    payload = json_safe(result.to_dict())
    json.dumps(payload, allow_nan=False)  # fail before anything is written
    with atomic_dir(out) as tmp:
        for name, content in result.files.items():
            atomic_write_bytes(tmp / name, content)
        atomic_write_json(tmp / RESULTS_NAME, payload)
    return out / RESULTS_NAME


def read_experiment(folder: str | os.PathLike) -> ExperimentResult:
    """Read a folder written by :func:`write_experiment` (figures stay on disk, named by file)."""
    path = Path(folder) / RESULTS_NAME
    if not path.is_file():
        raise InputError(
            f"{str(path)!r}: missing; is {str(folder)!r} an experiment's output folder?"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{str(path)!r}: not valid JSON ({e})") from e
    if not isinstance(raw, dict) or "experiment" not in raw:
        raise InputError(f"{str(path)!r}: not an experiment's results.json (no 'experiment' key)")
    return ExperimentResult.from_dict(raw)
