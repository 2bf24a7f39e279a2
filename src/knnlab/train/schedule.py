"""Optimisers and learning-rate schedules as plain functions of the step.

The schedule is stateless: ``lr_at(step, cfg)`` is the learning rate used for optimisation step
``step`` (0-based), so resuming needs nothing but the step counter. ``set_lr`` writes it into an
optimiser's parameter groups (scaled by a group's optional ``lr_scale``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from knnlab.errors import InputError
from knnlab.train.config import TrainConfig

__all__ = ["lr_at", "make_optimizer", "set_lr"]


def lr_at(step: int, cfg: TrainConfig, base_lr: float | None = None) -> float:
    """Learning rate for 0-based step ``step``.

    * warm-up (``step < warmup_steps``): ``base * (step + 1) / warmup_steps``;
    * afterwards ``progress = (t - warmup) / (steps - warmup)`` in [0, 1], where ``t = step``, or,
      with ``steps_per_epoch`` set, ``t`` = the first step of the current epoch (a stepped schedule);
    * ``constant``: ``base``; ``exp``: ``base * 10 ** (-lr_decay * progress)``;
      ``cosine``: ``base * (r + (1 - r) * (1 + cos(pi * progress)) / 2)``;
      ``linear``: ``base * (1 - (1 - r) * progress)``, with ``r = min_lr_ratio``.

    N3Net's recipe (lr * 10^(-3 * epoch / 50) for 50 epochs) is ``schedule="exp", lr_decay=3.0,
    steps = 50 * steps_per_epoch``.
    """
    base = cfg.lr if base_lr is None else base_lr
    warm = cfg.warmup_steps
    if step < warm:
        return base * (step + 1) / warm
    if cfg.schedule == "constant":
        return base
    t = step if cfg.steps_per_epoch is None else (step // cfg.steps_per_epoch) * cfg.steps_per_epoch
    span = max(cfg.steps - warm, 1)
    progress = min(max((t - warm) / span, 0.0), 1.0)
    r = cfg.min_lr_ratio
    if cfg.schedule == "exp":
        return base * 10.0 ** (-cfg.lr_decay * progress)
    if cfg.schedule == "cosine":
        return base * (r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    if cfg.schedule == "linear":
        return base * (1.0 - (1.0 - r) * progress)
    raise InputError(f"TrainConfig: schedule={cfg.schedule!r} is not known")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's lr to ``lr * group.get("lr_scale", 1.0)``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def make_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    cfg: TrainConfig,
    **overrides: Any,
) -> torch.optim.Optimizer:
    """Adam or AdamW from ``cfg`` (lr, betas, eps, weight_decay); ``overrides`` win over cfg.

    ``params`` may be parameter groups; a group's ``lr_scale`` scales the scheduled lr.
    """
    kwargs: dict[str, Any] = {
        "lr": cfg.lr,
        "betas": cfg.betas,
        "eps": cfg.eps,
        "weight_decay": cfg.weight_decay,
    }
    kwargs.update(overrides)
    name = kwargs.pop("optimizer", cfg.optimizer)
    if name == "adam":
        return torch.optim.Adam(params, **kwargs)
    if name == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    raise InputError(f"optimizer={name!r} is not known; use adam or adamw")
