"""Exponential moving average of a model's weights, with StyleGAN2-ADA's optional ramp-up."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from knnlab.train.distributed import unwrap

__all__ = ["EMA", "ema_beta"]


def ema_beta(decay: float, num_updates: int, rampup: float | None) -> float:
    """The averaging weight of update number ``num_updates + 1``.

    Without ramp-up it is ``decay``. With ramp-up ``r`` (StyleGAN2-ADA's ``ema_rampup``,
    Karras et al. 2020, ``training_loop.py``: ``ema_nimg = min(ema_nimg, cur_nimg * r)``,
    ``beta = 0.5 ** (batch / ema_nimg)``) counted in steps instead of images: the half-life of
    ``decay``, ``h = ln 0.5 / ln decay`` steps, is capped at ``r * t`` where ``t = num_updates`` is
    the number of updates before this one, and ``beta = 0.5 ** (1 / max(min(h, r * t), 1e-8))``.
    So the first update copies the weights (beta = 0) and the average never reaches back to the
    initial weights by more than about ``r`` of the run.
    """
    if rampup is None or decay == 0.0:
        return decay
    half_life = math.log(0.5) / math.log(decay)
    return 0.5 ** (1.0 / max(min(half_life, rampup * num_updates), 1e-8))


class EMA:
    """``ema = beta * ema + (1 - beta) * param`` after every optimiser step.

    ``beta`` is ``decay``, or with ``rampup`` set the ramped-up weight of :func:`ema_beta`.
    ``ema.module`` is a frozen copy of the model (eval mode, no gradients) holding the averaged
    weights; buffers (e.g. BatchNorm statistics) are copied, not averaged. Floating-point parameters
    are averaged in their own dtype; integer tensors are copied.

    >>> ema = EMA(model, decay=0.999, rampup=0.05)
    >>> loss.backward(); opt.step(); ema.update(model)
    >>> psnr = evaluate(ema.module)
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, rampup: float | None = None) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay={decay} must be in [0, 1)")
        if rampup is not None and not rampup > 0.0:
            raise ValueError(f"EMA rampup={rampup} must be None or > 0")
        self.decay = float(decay)
        self.rampup = None if rampup is None else float(rampup)
        self.num_updates = 0
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @property
    def beta(self) -> float:
        """The weight the next :meth:`update` gives the current average."""
        return ema_beta(self.decay, self.num_updates, self.rampup)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        model = unwrap(model)
        d = self.beta
        for p_ema, p in zip(self.module.parameters(), model.parameters(), strict=True):
            if p_ema.dtype.is_floating_point:
                p_ema.mul_(d).add_(p.detach(), alpha=1.0 - d)
            else:
                p_ema.copy_(p)
        for b_ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averaged ones."""
        unwrap(model).load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict[str, Any]:
        """The averaged module's state dict (tensors only; ``num_updates`` lives in extra_state)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)

    def extra_state(self) -> dict[str, Any]:
        return {"decay": self.decay, "rampup": self.rampup, "num_updates": self.num_updates}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state.get("num_updates", 0))

    def to(self, device: torch.device | str) -> EMA:
        self.module.to(device)
        return self
