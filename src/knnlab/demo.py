"""``knnlab demo``: every method on built-in defaults, one HTML report.

Each method contributes a section function ``section(*, quick, device, seed)`` that computes and
returns an :class:`~knnlab.results.ExperimentResult`. The demo writes each section's results and
figures into ``OUT/<section>/`` (:func:`knnlab.results.write_experiment`), renders ``report.html``
from those folders (:meth:`knnlab.report.Report.add_experiment`) and gathers every section's
results in ``OUT/results.json``.

A section whose data or weights are missing (:class:`~knnlab.errors.DataNotFoundError`) does not
stop the demo: its part of the report says "skipped: <reason>" and the other sections run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from knnlab.devices import resolve_device
from knnlab.errors import DataNotFoundError
from knnlab.io_utils import atomic_dir
from knnlab.report import Report
from knnlab.results import ExperimentResult, write_experiment

__all__ = ["SECTIONS", "run_demo", "run_section"]

log = logging.getLogger(__name__)

SectionFn = Callable[..., ExperimentResult]


def _knn() -> tuple[str, SectionFn]:
    from knnlab.knn.demo import TITLE, section

    return TITLE, section


def _denoise() -> tuple[str, SectionFn]:
    from knnlab.n3.demo import TITLE, section

    return TITLE, section


def _sr() -> tuple[str, SectionFn]:
    from knnlab.n3.sr_demo import TITLE, section

    return TITLE, section


def _real_noise() -> tuple[str, SectionFn]:
    from knnlab.n3.real.demo import TITLE, section

    return TITLE, section


def _corr() -> tuple[str, SectionFn]:
    from knnlab.n3.corr_demo import TITLE, section

    return TITLE, section


def _bright() -> tuple[str, SectionFn]:
    from knnlab.bright.demo import TITLE, section

    return TITLE, section


def _hubness() -> tuple[str, SectionFn]:
    from knnlab.hubness.demo import TITLE, section

    return TITLE, section


# name -> loader of (title, section function), in report order
SECTIONS: dict[str, Callable[[], tuple[str, SectionFn]]] = {
    "knn": _knn,
    "denoise": _denoise,
    "real-noise": _real_noise,
    "sr": _sr,
    "corr": _corr,
    "hubness": _hubness,
    "bright": _bright,
}


def run_section(
    name: str, *, quick: bool, device: torch.device | str, seed: int
) -> ExperimentResult:
    """One section's result; missing data or weights give a skipped result instead of an error.

    The result is named ``name`` (its key in the demo's results.json and its folder)."""
    title, fn = SECTIONS[name]()
    try:
        res = fn(quick=quick, device=device, seed=seed)
    except DataNotFoundError as e:
        log.warning("demo section %s skipped: %s", name, e)
        return ExperimentResult.skip(name, title, str(e))
    res.experiment = name
    return res


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    only: Sequence[str] = (),
    device: str | torch.device = "auto",
    seed: int = 0,
) -> tuple[Path, Path]:
    """Run the chosen sections (all by default); write ``OUT/<section>/`` (results.json + figures),
    ``OUT/report.html`` and ``OUT/results.json`` (every section's results and ``_meta``).

    The output folder is filled atomically: if a section fails with an error other than missing
    data, nothing is written to ``out``.
    """
    dev = resolve_device(device)
    names = [n for n in SECTIONS if not only or n in only]
    out = Path(out)
    report = Report("knnlab demo")
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with atomic_dir(out) as tmp:
        for name in names:
            t0 = time.perf_counter()
            log.info("demo section %s", name)
            res = run_section(name, quick=quick, device=dev, seed=seed)
            timings[name] = round(time.perf_counter() - t0, 2)
            if res.skipped is not None:
                skipped[name] = res.skipped
            write_experiment(tmp / name, res)
        for name in names:  # the report is rendered from the folders, as for any experiment
            report.add_experiment(tmp / name)
        report.results["_meta"] = {
            "device": str(dev),
            "quick": quick,
            "seed": seed,
            "seconds": timings,
            "skipped": skipped,
            "sections": names,
            "torch": torch.__version__,
        }
        report.write(tmp)
    return out / "report.html", out / "results.json"
