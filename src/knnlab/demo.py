"""``knnlab demo``: every method on built-in defaults, one HTML report.

Each method contributes a section function ``section(report, *, quick, device, seed)`` that adds its
tables and pictures to the report and its numbers to ``report.results[name]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from knnlab.devices import resolve_device
from knnlab.io_utils import atomic_dir
from knnlab.report import Report

__all__ = ["SECTIONS", "run_demo"]

log = logging.getLogger(__name__)

SectionFn = Callable[..., None]


def _knn() -> SectionFn:
    from knnlab.knn.demo import section

    return section


def _denoise() -> SectionFn:
    from knnlab.n3.demo import section

    return section


def _sr() -> SectionFn:
    from knnlab.n3.sr_demo import section

    return section


def _hubness() -> SectionFn:
    from knnlab.hubness.demo import section

    return section


# name -> loader of the section function, in report order
SECTIONS: dict[str, Callable[[], SectionFn]] = {
    "knn": _knn,
    "denoise": _denoise,
    "sr": _sr,
    "hubness": _hubness,
}


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    only: Sequence[str] = (),
    device: str | torch.device = "auto",
    seed: int = 0,
) -> tuple[Path, Path]:
    """Run the chosen sections (all by default) and write ``report.html`` + ``results.json``.

    The output folder is filled atomically: if a section fails, nothing is written to ``out``.
    """
    dev = resolve_device(device)
    report = Report("knnlab demo")
    names = [n for n in SECTIONS if not only or n in only]
    timings: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        log.info("demo section %s", name)
        SECTIONS[name]()(report, quick=quick, device=dev, seed=seed)
        timings[name] = round(time.perf_counter() - t0, 2)
    report.results["_meta"] = {
        "device": str(dev),
        "quick": quick,
        "seed": seed,
        "seconds": timings,
        "torch": torch.__version__,
    }
    out = Path(out)
    with atomic_dir(out) as tmp:
        report.write(tmp)
    return out / "report.html", out / "results.json"
