"""Training VDSR or N³Net for super-resolution, ×2/×3/×4 in one model, on :mod:`knnlab.train`.

Recipe (the defaults of :class:`SRTrainConfig`):

- data: the Y of T91 (RGB → BT.601 Y in 8 bits) and Train400 (gray BSDS crops), the images VDSR
  trains on (Yang's 91 + BSDS); images smaller than the crop are dropped; random 80×80 crops (N3NetSR
  needs ≥ 76) with the 8 flips and 90° rotations; every batch holds the same number of crops of each
  scale (:class:`~knnlab.n3.sr_data.SRPatchDataset`);
- loss: mean squared error between the output and the high-resolution Y (VDSR's Eq. 5 up to a
  constant factor);
- optimiser: Adam (β = 0.9, 0.999) at ``lr``; the gradient norm clipped to ``grad_clip``;
  VDSR used SGD with momentum at lr 0.1 and *adjustable* clipping (θ/lr) to make that high rate
  stable; Adam reaches a good model in far fewer steps, which is what a short budget needs, and the
  clip remains as a guard against the spikes of a deep plain network;
- schedule: VDSR's stepped decay compressed onto the run: the lr drops by ``lr_drop`` at each
  quarter of the steps (VDSR: ÷10 every 20 of 80 epochs);
- N3NetSR's BatchNorm layers (in the embedding and temperature CNNs of its N³ blocks) get their
  running statistics recomputed exactly at the end, as the denoising recipe does
  (:func:`~knnlab.n3.training.recalibrate_batchnorm`).

``budget_steps`` shortens the run; the schedule is compressed to fit. ``budget_minutes`` gives the
budget as time instead: a few throwaway steps on the real batches measure the seconds per step on this
machine (:func:`probe_step_seconds`), the run gets as many steps as fit, and that count is written to
``out_dir/budget.json`` so that a resumed run keeps it. Two models trained side by side for the same
minutes on the same machine are then compared at equal compute.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json
from knnlab.n3.sr_data import SCALES, SRPatchDataset, check_scale, load_y_images

__all__ = ["SRTrainConfig", "build_sr_model", "probe_step_seconds", "sr_loss", "train_sr"]

log = logging.getLogger(__name__)


@dataclass
class SRTrainConfig:
    """``knnlab train sr``: one model for all ``scales``, shortened by ``budget_steps``."""

    model: str = "n3net"  # "n3net" (N3NetSR) or "vdsr" (20 layers)
    scales: tuple[int, ...] = SCALES  # trained together, equal shares of every batch
    datasets: tuple[str, ...] = ("T91", "Train400")  # training images (names or folders)
    patch_size: int = 80  # square crops of the HR Y (N3NetSR needs >= 76)
    batch_size: int = 30  # crops per step, a multiple of len(scales)
    steps: int = 60_000  # full-length run
    budget_steps: int | None = None  # stop after this many steps (schedule compressed to fit)
    budget_minutes: float | None = None  # or: as many steps as fit in this time (measured first)
    lr: float = 1e-4  # Adam
    lr_drop: float = 10.0**0.5  # lr divided by this at each quarter of the run
    grad_clip: float = 1.0  # global gradient-norm clip
    bn_batches: int = 16  # batches for the final BatchNorm statistics (N3NetSR)
    seed: int = 0
    eval_dataset: str | None = "Set5"  # scored at every scale at the end (None: skip)
    eval_limit: int | None = None
    checkpoint_every: int = 100
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # overrides of the model config

    def __post_init__(self) -> None:
        if self.model not in ("n3net", "vdsr"):
            raise InputError(f"--model {self.model!r}: choose n3net or vdsr")
        self.scales = tuple(check_scale(s, "--scales") for s in self.scales)
        if not self.scales:
            raise InputError("--scales: give at least one scale, e.g. 2,3,4")
        if self.budget_steps is not None and self.budget_steps < 1:
            raise InputError(f"--budget-steps {self.budget_steps}: must be at least 1")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise InputError(f"--budget-minutes {self.budget_minutes}: must be > 0")
        if self.batch_size < 1 or self.batch_size % len(self.scales):
            raise InputError(
                f"--batch-size {self.batch_size}: must be a positive multiple of the number of "
                f"scales ({len(self.scales)}), so every batch holds each scale equally"
            )
        if self.model == "n3net" and self.patch_size < 76:
            raise InputError(f"--patch-size {self.patch_size}: N3NetSR needs at least 76")
        if self.patch_size < max(self.scales) * 4:
            raise InputError(f"--patch-size {self.patch_size}: too small for ×{max(self.scales)}")
        if self.lr <= 0 or self.lr_drop < 1:
            raise InputError(f"--lr {self.lr} must be > 0 and lr_drop {self.lr_drop} >= 1")

    @property
    def run_steps(self) -> int:
        return min(self.budget_steps or self.steps, self.steps)


def build_sr_model(name: str, **overrides: Any) -> nn.Module:
    """A freshly initialised model: ``"n3net"`` (:class:`N3NetSR`) or ``"vdsr"`` (:class:`VDSR`),
    default sizes unless ``overrides`` change config fields."""
    from knnlab.n3.n3net_sr import N3NetSR
    from knnlab.n3.vdsr import VDSR

    if name == "n3net":
        return N3NetSR(**overrides)
    if name == "vdsr":
        return VDSR(**overrides)
    raise InputError(f"model {name!r}: choose n3net or vdsr")


def sr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every pixel of the batch."""
    return (pred - target).pow(2).mean()


def _flatten(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = batch  # (B, S, 1, P, P) each
    return x.flatten(0, 1), y.flatten(0, 1)  # (B·S, 1, P, P)


def probe_step_seconds(
    net: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    lr: float = 1e-4,
    device: torch.device | str = "cpu",
) -> float:
    """Median seconds of one training step (forward, MSE, backward, Adam) of a *copy* of ``net``
    over ``batches[1:]`` (``batches[0]`` warms up). ``net`` and the global RNG are left untouched."""
    import copy
    import statistics

    if len(batches) < 2:
        raise InputError("probe_step_seconds: needs at least two batches (one warms up)")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        probe = copy.deepcopy(net).to(device).train()
        opt = torch.optim.Adam(probe.parameters(), lr=lr)
        times = []
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            sr_loss(probe(x), y).backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def _budget_steps(cfg: SRTrainConfig, out_dir: Path, net: nn.Module, data, device, resume: bool):
    """The step count of a ``budget_minutes`` run: read from ``out_dir/budget.json`` when resuming,
    else measured (3 steps after a warm-up) and written there."""
    path = out_dir / "budget.json"
    if resume and path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("budget_minutes") == cfg.budget_minutes:
            return int(saved["steps"])
    groups = cfg.batch_size // len(cfg.scales)
    batches = []
    for i in range(4):
        items = [data[j] for j in range(i * groups, (i + 1) * groups)]
        batches.append(
            _flatten((torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])))
        )
    sec = probe_step_seconds(net, batches, lr=cfg.lr, device=device)
    assert cfg.budget_minutes is not None
    # 3% of the budget is left for logging, checkpoints and the data loader
    steps = max(1, min(cfg.steps, int(cfg.budget_minutes * 60 * 0.97 / sec)))
    log.info("%.2f s per step: %d steps fit in %g minutes", sec, steps, cfg.budget_minutes)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        path,
        {"budget_minutes": cfg.budget_minutes, "seconds_per_step": round(sec, 4), "steps": steps,
         "threads": torch.get_num_threads(), "device": str(device)},
    )  # fmt: skip
    return steps


def train_sr(
    cfg: SRTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train, recalibrate BatchNorm, save ``out_dir/model`` (``save_pretrained``), evaluate on
    ``cfg.eval_dataset`` at every scale. Returns (and writes to ``out_dir/summary.json``) a summary."""
    from knnlab.n3.training import recalibrate_batchnorm
    from knnlab.train import TrainConfig, Trainer, seed_everything

    out_dir = Path(out_dir)
    device = torch.device(device)
    t0 = time.perf_counter()
    images, dropped = load_y_images(cfg.datasets, min_size=cfg.patch_size)
    budget: dict[str, Any] | None = None
    if cfg.budget_minutes is not None and cfg.budget_steps is None:
        probe_data = SRPatchDataset(
            images, cfg.patch_size, scales=cfg.scales, length=4 * (cfg.batch_size // len(cfg.scales)),
            seed=cfg.seed + 2,
        )  # fmt: skip
        probe_net = build_sr_model(cfg.model, **cfg.model_kwargs)
        n = _budget_steps(cfg, out_dir, probe_net, probe_data, device, resume)
        budget = json.loads((out_dir / "budget.json").read_text())
        cfg = replace(cfg, budget_steps=n)
    steps = cfg.run_steps
    quarter = max(1, math.ceil(steps / 4))
    groups = cfg.batch_size // len(cfg.scales)
    tcfg = TrainConfig(
        steps=steps,
        batch_size=groups,  # items are groups of len(scales) crops
        seed=cfg.seed,
        optimizer="adam",
        lr=cfg.lr,
        schedule="exp",
        # stepped every quarter: progress = quarter index / (steps / quarter)
        lr_decay=math.log10(cfg.lr_drop) * steps / quarter,
        steps_per_epoch=quarter,
        grad_clip=cfg.grad_clip,
        log_every=max(1, min(25, steps // 10 or 1)),
        checkpoint_every=cfg.checkpoint_every,
        out_dir=out_dir,
        device=str(device),
        tensorboard=False,
        extra={"sr": asdict(cfg)},
    )
    data = SRPatchDataset(
        images, cfg.patch_size, scales=cfg.scales, length=steps * groups, seed=cfg.seed
    )
    seed_everything(cfg.seed)  # the initial weights: torch's own start-up seed is random
    net = build_sr_model(cfg.model, **cfg.model_kwargs)

    def loss_fn(net: nn.Module, batch):
        x, y = _flatten(batch)
        pred = net(x)
        loss = sr_loss(pred, y)
        with torch.no_grad():
            mse = (pred - y).pow(2).flatten(1).mean(1).clamp_min(1e-12)
            psnr = (-10.0 * torch.log10(mse)).mean()
        return loss, {"psnr": psnr}

    trainer = Trainer(net, tcfg, loss_fn, data)
    result = trainer.fit(resume=resume)
    model: Any = trainer.model

    bn_data = SRPatchDataset(
        images, cfg.patch_size, scales=cfg.scales, length=cfg.bn_batches * groups,
        seed=cfg.seed + 1,
    )  # fmt: skip

    def bn_batches():
        for i in range(cfg.bn_batches):
            items = [bn_data[j] for j in range(i * groups, (i + 1) * groups)]
            x = torch.stack([a for a, _ in items]).flatten(0, 1)
            yield x.to(trainer.device)

    n_bn = recalibrate_batchnorm(model, bn_batches())
    model.eval()
    model.save_pretrained(out_dir / "model")
    summary: dict[str, Any] = {
        "model": cfg.model,
        "config": asdict(cfg),
        "steps": result.step,
        "seconds": round(trainer.elapsed, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "dropped_images": dropped,
        "num_training_images": len(images),
        "bn_recalibration_batches": n_bn,
        "last_log": result.last_log,
        "budget": budget,
        "model_dir": str(out_dir / "model"),
    }
    if cfg.eval_dataset:
        from knnlab.n3.sr_eval import evaluate_sr
        from knnlab.n3.superres import load_upscaler

        up = load_upscaler(out_dir / "model", device=trainer.device, tile=None)
        up.name = f"{cfg.model}-trained"
        summary["eval"] = [
            evaluate_sr([up, "bicubic"], cfg.eval_dataset, s, limit=cfg.eval_limit)
            for s in cfg.scales
        ]
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
