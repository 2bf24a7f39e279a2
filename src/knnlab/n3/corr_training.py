"""Training CNNet / N3CNNet for correspondence classification on :mod:`knnlab.train`.

Recipe (Yi et al. 2018; the N³Net release): Adam, lr 1e-3, batch 32 pairs, the class-balanced
logistic loss, and from step ``essential_after`` on (20 000 in the release) also 0.1 × the
essential-matrix loss (:mod:`knnlab.n3.corr_loss`).

Data: ``"synthetic"`` (:class:`~knnlab.data.twoview_synthetic.SyntheticTwoView`, one fresh pair per
sample of the run) or a scene folder / name (:func:`~knnlab.data.twoview.load_scene`), whose pairs
are cut to ``num_matches`` matches per sample (a seeded random subset, drawn with replacement when a
pair has fewer).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json

__all__ = ["CorrTrainConfig", "SceneMatches", "build_corr_model", "train_corr"]

log = logging.getLogger(__name__)

RELEASE_ESSENTIAL_AFTER = 20_000


@dataclass
class CorrTrainConfig:
    """``knnlab train corr``: the released recipe, shortened by ``budget_steps``."""

    model: str = "n3cnnet"  # "cnnet" or "n3cnnet"
    data: str = "synthetic"  # "synthetic", a scene name (reichstag, lund_door) or a scene folder
    steps: int = 500_000  # the released run length (Yi et al. train for 500k iterations)
    budget_steps: int | None = None  # stop after this many steps instead
    batch_size: int = 32  # pairs per step
    num_matches: int = 2000  # matches per training pair (N)
    lr: float = 1e-3
    essential_weight: float = 0.1
    essential_after: int | None = None  # None: 20 000, or half the run when that is shorter
    seed: int = 0
    val_pairs: int = 16  # held-out synthetic pairs scored at the end (another seed)
    checkpoint_every: int = 200
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.model not in ("cnnet", "n3cnnet"):
            raise InputError(f"--model {self.model!r}: choose cnnet or n3cnnet")
        if self.budget_steps is not None and self.budget_steps < 1:
            raise InputError(f"--budget-steps {self.budget_steps}: must be at least 1")
        if self.num_matches < 8:
            raise InputError(f"--num-matches {self.num_matches}: must be at least 8")
        if self.batch_size < 1:
            raise InputError(f"--batch-size {self.batch_size}: must be at least 1")

    @property
    def total_steps(self) -> int:
        return min(self.budget_steps or self.steps, self.steps)

    @property
    def essential_start(self) -> int:
        if self.essential_after is not None:
            return self.essential_after
        return min(RELEASE_ESSENTIAL_AFTER, self.total_steps // 2)


def build_corr_model(name: str) -> nn.Module:
    """A freshly initialised released-size ``"cnnet"`` or ``"n3cnnet"``."""
    from knnlab.n3.cnnet import CNNet, N3CNNet

    if name == "cnnet":
        return CNNet()
    if name == "n3cnnet":
        return N3CNNet()
    raise InputError(f"model {name!r}: choose cnnet or n3cnnet")


class SceneMatches(Dataset):
    """Real pairs as training samples: item ``i`` is pair ``i mod P`` cut to ``num_matches`` matches
    (a random subset seeded by ``(seed, i)``), as ``{"x", "label", "E"}`` float32 tensors."""

    def __init__(self, scene: str | Path, length: int, num_matches: int, seed: int = 0) -> None:
        from knnlab.data.twoview import load_scene, pair_matches

        self.pairs = []
        for p in load_scene(scene):
            m = pair_matches(p)
            if len(m["x"]) >= 8:
                self.pairs.append((m["x"], m["label"].astype(np.float32), p.E.astype(np.float32)))
        if not self.pairs:
            raise InputError(f"--data {str(scene)!r}: no pair has 8 or more matches")
        self.length, self.num_matches, self.seed = length, num_matches, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y, E = self.pairs[i % len(self.pairs)]
        rng = np.random.default_rng([self.seed, i])
        idx = rng.choice(len(x), self.num_matches, replace=len(x) < self.num_matches)
        return {
            "x": torch.from_numpy(x[idx]),
            "label": torch.from_numpy(y[idx]),
            "E": torch.from_numpy(E),
        }


def _dataset(cfg: CorrTrainConfig, length: int, seed: int) -> Dataset:
    from knnlab.data.twoview_synthetic import SyntheticTwoView, SyntheticTwoViewConfig

    if cfg.data == "synthetic":
        return SyntheticTwoView(length, seed, SyntheticTwoViewConfig(num_matches=cfg.num_matches))
    return SceneMatches(cfg.data, length, cfg.num_matches, seed)


@torch.no_grad()
def _validate(model: nn.Module, cfg: CorrTrainConfig) -> dict[str, float]:
    """Inlier precision / recall / F1 (logit > 0) on held-out synthetic pairs of N = 2000."""
    from knnlab.data.twoview_synthetic import SyntheticTwoView

    data = SyntheticTwoView(cfg.val_pairs, seed=cfg.seed + 1_000_003)
    tp = fp = fn = 0.0
    model.eval()
    dev = next(model.parameters()).device
    for i in range(len(data)):
        item = data[i]
        pred = model(item["x"][None].to(dev))[0].cpu() > 0
        lab = item["label"] > 0.5
        tp += float((pred & lab).sum())
        fp += float((pred & ~lab).sum())
        fn += float((~pred & lab).sum())
    p, r = tp / max(tp + fp, 1.0), tp / max(tp + fn, 1.0)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12)}


def train_corr(
    cfg: CorrTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train, save ``out_dir/model`` (``save_pretrained``), score held-out synthetic pairs.

    Returns (and writes to ``out_dir/summary.json``) the steps, the time and the validation scores.
    """
    from knnlab.n3.corr_loss import correspondence_loss
    from knnlab.train import TrainConfig, Trainer, seed_everything

    out_dir = Path(out_dir)
    steps = cfg.total_steps
    tcfg = TrainConfig(
        steps=steps,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
        optimizer="adam",
        lr=cfg.lr,
        log_every=max(1, min(50, steps // 20 or 1)),
        checkpoint_every=cfg.checkpoint_every,
        out_dir=out_dir,
        device=str(device),
        tensorboard=False,
        extra={"corr": asdict(cfg)},
    )
    data = _dataset(cfg, steps * cfg.batch_size, cfg.seed)
    seed_everything(cfg.seed)  # the initial weights: torch's own start-up seed is random
    net = build_corr_model(cfg.model)
    holder: dict[str, Any] = {}

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]):
        step = holder["trainer"].step  # steps completed before this one
        weight = cfg.essential_weight if step >= cfg.essential_start else 0.0
        logits = model(batch["x"])
        loss, logs = correspondence_loss(
            logits, batch["x"], batch["label"] > 0.5, batch["E"], essential_weight=weight
        )
        with torch.no_grad():
            pred, lab = logits > 0, batch["label"] > 0.5
            logs["precision"] = (pred & lab).sum() / pred.sum().clamp_min(1)
            logs["recall"] = (pred & lab).sum() / lab.sum().clamp_min(1)
        return loss, logs

    t0 = time.perf_counter()
    trainer = Trainer(net, tcfg, loss_fn, data)
    holder["trainer"] = trainer
    result = trainer.fit(resume=resume)
    model: Any = trainer.model
    model.eval()
    model.save_pretrained(out_dir / "model")
    summary: dict[str, Any] = {
        "model": cfg.model,
        "config": asdict(cfg),
        "steps": result.step,
        "essential_start": cfg.essential_start,
        "seconds": round(trainer.elapsed, 1),
        "last_log": result.last_log,
        "model_dir": str(out_dir / "model"),
    }
    if cfg.val_pairs > 0:
        summary["val_synthetic"] = _validate(model, cfg)
    summary["wall_seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
