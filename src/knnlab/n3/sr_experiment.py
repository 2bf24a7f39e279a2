"""``knnlab experiment sr``: VDSR and N³Net trained at the same budget, against bicubic and the
published numbers, on Set5, Set14 and B100 at ×2, ×3 and ×4 (Plötz & Roth 2018, Sec. 5.2).

Both models get the same recipe (:class:`~knnlab.n3.sr_training.SRTrainConfig`: data, crops, batch,
optimiser, schedule, steps). Training runs go to ``runs_dir/<model>`` and resume, so runs started
beforehand with ``knnlab train sr --out runs_dir/<model>`` and the same settings are picked up.
Evaluations are cached in ``runs_dir/eval/`` under the model's weights hash, so several processes with
different ``--datasets`` can share the work and a last call gathers the table.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from knnlab.errors import InputError
from knnlab.hub import sha256_file
from knnlab.io_utils import atomic_write_json
from knnlab.n3.sr_data import SCALES
from knnlab.n3.sr_eval import PAPER_PSNR, PROTOCOL, SR_DATASETS, evaluate_sr
from knnlab.n3.sr_training import SRTrainConfig, train_sr
from knnlab.results import ExperimentResult

__all__ = ["MODELS", "SRExperimentConfig", "run_sr_experiment"]

log = logging.getLogger(__name__)

#: Trained models of the experiment: CLI name -> (label, asset folder name).
MODELS = {"vdsr": ("VDSR", "vdsr_sr"), "n3net": ("N³Net", "n3net_sr")}


@dataclass
class SRExperimentConfig:
    """Settings of ``knnlab experiment sr``; the training fields are shared by both models."""

    budget_steps: int | None = None  # optimiser steps of each model (None: the full run)
    budget_minutes: float | None = None  # or: the same minutes of training for each model
    parallel: bool = False  # train the two models side by side, each on half the CPU threads
    steps: int = 60_000  # full-length run (schedule length when budget_steps is None)
    batch_size: int = 30  # crops per step (equal parts of every scale)
    patch_size: int = 80
    lr: float = 1e-4
    scales: tuple[int, ...] = SCALES
    datasets: tuple[str, ...] = SR_DATASETS  # evaluation sets
    eval_scales: tuple[int, ...] | None = None  # evaluate only these scales (None: all trained)
    limit: int | None = None  # evaluate only the first N images of each set (None: all)
    seed: int = 0
    runs_dir: str = "runs/experiment-sr"  # training runs and the evaluation cache
    assets: str | None = None  # also copy the trained models here (<assets>/n3net_sr, vdsr_sr)

    def __post_init__(self) -> None:
        bad = [d for d in self.datasets if d not in SR_DATASETS]
        if bad or not self.datasets:
            raise InputError(
                f"--datasets {list(self.datasets)}: choose from {', '.join(SR_DATASETS)}"
            )
        if self.eval_scales and not set(self.eval_scales) <= set(self.scales):
            raise InputError(
                f"--eval-scales {list(self.eval_scales)}: only the trained --scales "
                f"{list(self.scales)} can be evaluated"
            )
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit {self.limit}: must be at least 1")

    def train_config(self, model: str) -> SRTrainConfig:
        return SRTrainConfig(
            model=model,
            scales=self.scales,
            patch_size=self.patch_size,
            batch_size=self.batch_size,
            steps=self.steps,
            budget_steps=self.budget_steps,
            budget_minutes=self.budget_minutes,
            lr=self.lr,
            seed=self.seed,
            eval_dataset=None,
        )


def _finished_run(run: Path, cfg: SRTrainConfig) -> dict[str, Any] | None:
    """The summary of a finished ``train_sr`` run in ``run`` with exactly this config, else None."""
    path = run / "summary.json"
    if not (path.is_file() and (run / "model" / "model.safetensors").is_file()):
        return None
    summary = json.loads(path.read_text())
    saved = dict(summary.get("config") or {})
    want = json.loads(json.dumps(asdict(cfg)))
    if cfg.budget_minutes is not None and cfg.budget_steps is None:  # steps fixed by the run itself
        steps = saved.get("budget_steps")
        saved["budget_steps"] = None
        return summary if saved == want and summary.get("steps") == steps else None
    return summary if saved == want and summary.get("steps") == cfg.run_steps else None


def _cached_eval(
    cache: Path, tag: str, model: str | Path, weights: str, dataset: str, scale: int,
    limit: int | None, device: torch.device,
) -> dict[str, Any]:  # fmt: skip
    """One model's :func:`evaluate_sr` entry, reused from ``cache`` when the weights are the same."""
    path = cache / f"{tag}-{dataset}-x{scale}-n{limit or 'all'}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("weights_sha256") == weights:
            return saved["entry"]
    res = evaluate_sr([model], dataset, scale, limit=limit, device=device)
    entry = res["results"][0]
    entry["num_images"] = res["num_images"]
    atomic_write_json(path, {"weights_sha256": weights, "entry": entry})
    return entry


def _figure(rows: list[dict[str, Any]], datasets, scales):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sub = [r for r in rows if r["dataset"] == ds]
        xs = range(len(sub))
        w = 0.38
        for k, (key, label) in enumerate([("VDSR", "VDSR"), ("N³Net", "N³Net")]):
            gains = [r[key] - r["bicubic"] for r in sub]
            ax.bar([x + (k - 0.5) * w for x in xs], gains, w, label=label)
        paper = [r["VDSR (paper)"] - r["bicubic (paper)"] for r in sub]
        ax.plot(list(xs), paper, "k_", markersize=18, label="VDSR (paper)")
        ax.set_xticks(list(xs), [f"×{r['scale']}" for r in sub])
        ax.set_title(ds)
        ax.set_ylabel("PSNR gain over bicubic (dB)")
        ax.axhline(0, color="gray", lw=0.5)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _train_job(tcfg: SRTrainConfig, run: str, device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    train_sr(tcfg, run, resume=True, device=device)


def _train_side_by_side(
    cfg: SRExperimentConfig, names: list[str], runs: Path, device: torch.device
) -> None:
    """Train ``names`` at the same time in worker processes, the CPU threads split evenly, so that a
    time budget gives every model the same share of the same machine."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, torch.get_num_threads() // len(names))
    log.info("training %s side by side, %d thread(s) each", ", ".join(names), threads)
    with ProcessPoolExecutor(len(names), mp_context=mp.get_context("spawn")) as pool:
        jobs = [
            pool.submit(_train_job, cfg.train_config(n), str(runs / n), str(device), threads)
            for n in names
        ]
        for job in jobs:
            job.result()


def _read_log(path: Path) -> list[dict[str, Any]]:
    from knnlab.train.logger import read_jsonl

    if not path.is_file():
        return []
    return [r for r in read_jsonl(path) if "psnr" in r and "step" in r]


def _training_figure(runs: Path):
    """Training-crop PSNR of both runs against steps and against minutes (from their JSONL logs),
    a running mean over 5 log points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, (label, _) in MODELS.items():
        log_rows = _read_log(runs / name / "log.jsonl")
        if not log_rows:
            continue
        psnr = [r["psnr"] for r in log_rows]
        smooth = [sum(psnr[max(0, i - 4) : i + 1]) / len(psnr[max(0, i - 4) : i + 1])
                  for i in range(len(psnr))]  # fmt: skip
        axes[0].plot([r["step"] for r in log_rows], smooth, label=label)
        axes[1].plot([r.get("time", 0.0) / 60 for r in log_rows], smooth, label=label)
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("training minutes")
    for ax in axes:
        ax.set_ylabel("PSNR on training crops (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_sr_experiment(
    cfg: SRExperimentConfig, *, device: torch.device | str = "cpu"
) -> ExperimentResult:
    """Train (or resume) both models, evaluate everything, return the experiment's tables and figure."""
    device = torch.device(device)
    runs = Path(cfg.runs_dir)
    cache = runs / "eval"
    timings: dict[str, float] = {}
    trained: dict[str, dict[str, Any]] = {}
    todo = [n for n in MODELS if _finished_run(runs / n, cfg.train_config(n)) is None]
    if cfg.parallel and len(todo) > 1:
        _train_side_by_side(cfg, todo, runs, device)
    for name in MODELS:
        tcfg = cfg.train_config(name)
        summary = _finished_run(runs / name, tcfg)
        if summary is None:
            summary = train_sr(tcfg, runs / name, resume=True, device=device)
        else:
            log.info("reusing the finished run %s", runs / name)
        timings[f"train_{name}_s"] = summary["seconds"]
        timings[f"train_{name}_wall_s"] = summary["wall_seconds"]
        weights = sha256_file(runs / name / "model" / "model.safetensors")
        trained[name] = {"summary": summary, "sha256": weights, "dir": runs / name / "model"}

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for ds in cfg.datasets:
        for s in cfg.eval_scales or cfg.scales:
            row: dict[str, Any] = {"dataset": ds, "scale": s}
            bic = _cached_eval(cache, "bicubic", "bicubic", "-", ds, s, cfg.limit, device)
            row["images"] = bic["num_images"]
            row["bicubic"] = round(bic["psnr"], 3)
            row["bicubic (paper)"] = PAPER_PSNR.get(("bicubic", ds, s))
            if cfg.limit is not None:  # the protocol check on the whole set (bicubic is cheap)
                full = _cached_eval(cache, "bicubic", "bicubic", "-", ds, s, None, device)
                row["bicubic (all images)"] = round(full["psnr"], 3)
            for name, (label, _) in MODELS.items():
                t = trained[name]
                e = _cached_eval(cache, name, t["dir"], t["sha256"], ds, s, cfg.limit, device)
                row[label] = round(e["psnr"], 3)
                row[f"{label} SSIM"] = round(e["ssim"], 4)
                if name == "vdsr":
                    row["VDSR (paper)"] = PAPER_PSNR.get(("vdsr", ds, s))
            row["N³Net − VDSR"] = round(row["N³Net"] - row["VDSR"], 3)
            rows.append(row)
    timings["eval_s"] = round(time.perf_counter() - t0, 1)

    steps = {n: trained[n]["summary"]["steps"] for n in MODELS}
    if cfg.budget_minutes is not None and cfg.budget_steps is None:
        budget = (
            f"{cfg.budget_minutes:g} minutes of training per model on the same machine "
            f"({'side by side, half the threads each' if cfg.parallel else 'one after the other'}): "
            f"{steps['vdsr']} VDSR steps, {steps['n3net']} N³Net steps"
        )
    else:
        budget = f"{cfg.budget_steps or cfg.steps} steps per model"
    wins = sum(r["N³Net − VDSR"] > 0 for r in rows)
    limited = cfg.limit is not None
    res = ExperimentResult(
        "sr",
        "Super-resolution: N³Net vs VDSR vs bicubic",
        summary=(
            f"VDSR (20 layers) and N³Net (3 × VDSR-7 with 2 N³ blocks, k = 7), each one model for "
            f"×{'/×'.join(map(str, cfg.scales))}, trained with the same recipe for {steps['vdsr']} "
            f"and {steps['n3net']} steps of {cfg.batch_size} crops of {cfg.patch_size}×"
            f"{cfg.patch_size}. N³Net beats VDSR in {wins} of {len(rows)} cells."
            + (f" Only the first {cfg.limit} images of each set were scored." if limited else "")
        ),
        protocol={
            "evaluation": PROTOCOL,
            "training": "T91 (Y) + Train400, crops with flips/rot90, scales mixed equally in "
            "every batch, LR by MATLAB-exact bicubic; Adam, gradient-norm clip, lr stepped down "
            "at each quarter; MSE on Y",
            "published": "Kim et al. 2016 (VDSR), Table 2: bicubic and VDSR PSNR",
            "budget": budget,
            "limit": cfg.limit,
            "device": str(device),
        },
        timings=timings,
        data={"config": asdict(cfg), "train": {n: trained[n]["summary"] for n in MODELS}},
    )
    res.add_table(
        "psnr",
        rows,
        columns=[c for c in ["dataset", "scale", "images", "bicubic", "bicubic (all images)",
                 "bicubic (paper)", "VDSR", "VDSR (paper)", "N³Net", "N³Net − VDSR", "VDSR SSIM",
                 "N³Net SSIM"] if any(c in r for r in rows)],
        caption="PSNR (dB) on Y, scale pixels shaved; SSIM of the trained models",
        notes=[
            "The published VDSR was trained for hours on a GPU; the knnlab rows are trained for "
            f"{budget}, so compare VDSR and N³Net with each other.",
            "The published numbers are means over whole sets; with --limit the knnlab columns cover "
            "the first images only, and 'bicubic (all images)' is the whole set.",
        ],
    )  # fmt: skip
    res.add_figure(
        _figure(rows, cfg.datasets, cfg.eval_scales or cfg.scales),
        "sr_gain.png",
        "PSNR gain over bicubic per data set and scale (bars: knnlab at equal budget; dash: the "
        "published VDSR)",
    )
    res.add_figure(
        _training_figure(runs),
        "sr_training.png",
        "Training PSNR (crops of the training images, all scales; running mean of 5 log points) "
        "against steps and against minutes",
    )
    if cfg.assets:
        for name, (_, folder) in MODELS.items():
            dst = Path(cfg.assets) / folder
            dst.mkdir(parents=True, exist_ok=True)
            for f in ("config.json", "model.safetensors"):
                shutil.copyfile(trained[name]["dir"] / f, dst / f)
            train_log = runs / name / "log.jsonl"
            if train_log.is_file():
                shutil.copyfile(train_log, dst / "train_log.jsonl")
    return res
