"""The pieces of a multi-model step: :class:`Phase`, :class:`StepContext` (step-seeded noise),
per-module learning-rate groups, micro-batch splitting and the autocast precision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from knnlab.errors import InputError

__all__ = [
    "Phase",
    "PhaseLoss",
    "StepContext",
    "lr_scaled_groups",
    "resolve_precision",
    "split_batch",
]

Models = Mapping[str, nn.Module]
PhaseLoss = Callable[[Models, Any, "StepContext"], tuple[torch.Tensor, dict[str, Any]]]


@dataclass
class Phase:
    """One optimisation phase of a step."""

    name: str  # unique; its logs are "<name>/loss", "<name>/<key>"
    optimizer: str  # key of the optimiser this phase steps (its parameters get the gradients)
    loss: PhaseLoss  # loss(models, micro_batch, ctx) -> (loss, {name: scalar})
    every: int = 1  # run on steps s with s % every == 0; the loss is multiplied by every (lazy)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InputError(f"Phase {self.name!r}: every={self.every} must be >= 1")

    def runs_at(self, step: int) -> bool:
        return step % self.every == 0


@dataclass
class StepContext:
    """What a phase's loss knows about where it runs (one micro-batch of one rank)."""

    step: int  # the 0-based step being computed
    phase: str
    phase_index: int
    micro: int  # micro-batch index in 0 .. accum_steps - 1
    lo: int  # this micro-batch's samples are global-batch positions lo .. hi - 1
    hi: int
    global_batch: int
    seed: int
    device: torch.device
    _draws: int = 0

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal noise ``(hi - lo, *shape)`` for this micro-batch's samples.

        Drawn for the whole global batch from a generator seeded by ``(seed, step, phase, draw)``
        and sliced, so it does not depend on the number of processes or on ``accum_steps``.
        """
        ss = np.random.SeedSequence([self.seed % 2**63, self.step, self.phase_index, self._draws])
        self._draws += 1
        gen = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
        full = torch.randn(self.global_batch, *shape, generator=gen, dtype=dtype)
        return full[self.lo : self.hi].to(self.device)


def lr_scaled_groups(
    module: nn.Module, lr_scale: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """Parameter groups with per-module learning-rate multipliers.

    ``lr_scale`` maps a submodule name prefix (``"mapping"``) to a multiplier; the longest matching
    prefix wins, the rest gets 1.0. Each group is ``{"params", "lr_scale", "name"}``; the loops'
    :func:`~knnlab.train.set_lr` multiplies the scheduled lr by ``lr_scale``.
    """
    scales = dict(lr_scale or {})
    names = {n for n, _ in module.named_modules()}
    unknown = [k for k in scales if k not in names]
    if unknown:
        raise InputError(f"lr_scale names {unknown}: {type(module).__name__} has no such submodule")
    groups: dict[str, dict[str, Any]] = {}
    for pname, p in module.named_parameters():
        match = max(
            (k for k in scales if pname == k or pname.startswith(k + ".")), key=len, default=""
        )
        g = groups.setdefault(
            match, {"params": [], "lr_scale": scales.get(match, 1.0), "name": match or "rest"}
        )
        g["params"].append(p)
    return [groups[k] for k in sorted(groups, key=lambda k: (k != "", k))]


def split_batch(batch: Any, n: int) -> list[Any]:
    """Split a (nested) batch into ``n`` equal micro-batches along dim 0 of every tensor."""
    if n == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        if batch.shape[0] % n:
            raise InputError(f"a batch of {batch.shape[0]} cannot be split into {n} micro-batches")
        return list(batch.chunk(n))
    if isinstance(batch, dict):
        parts = {k: split_batch(v, n) for k, v in batch.items()}
        return [{k: parts[k][i] for k in batch} for i in range(n)]
    if isinstance(batch, list | tuple):
        cols = [split_batch(v, n) for v in batch]
        out = [[c[i] for c in cols] for i in range(n)]
        if hasattr(batch, "_fields"):
            return [type(batch)(*o) for o in out]
        return [type(batch)(o) for o in out]
    return [batch] * n  # non-tensor leaves (strings, ints) are shared


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: full precision)."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise InputError(
            f"precision='fp16' on {device}: fp16 training needs CUDA; use 'bf16' or 'fp32'"
        )
    return torch.bfloat16 if precision == "bf16" else torch.float16
