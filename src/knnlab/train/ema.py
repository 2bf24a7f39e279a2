"""Exponential moving average of a model's weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from knnlab.train.distributed import unwrap

__all__ = ["EMA"]


class EMA:
    """``ema = decay * ema + (1 - decay) * param`` after every optimiser step.

    ``ema.module`` is a frozen copy of the model (eval mode, no gradients) holding the averaged
    weights; buffers (e.g. BatchNorm statistics) are copied, not averaged. Floating-point parameters
    are averaged in their own dtype; integer tensors are copied.

    >>> ema = EMA(model, decay=0.999)
    >>> loss.backward(); opt.step(); ema.update(model)
    >>> psnr = evaluate(ema.module)
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay={decay} must be in [0, 1)")
        self.decay = float(decay)
        self.num_updates = 0
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        model = unwrap(model)
        d = self.decay
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
        return {"decay": self.decay, "num_updates": self.num_updates}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state.get("num_updates", 0))

    def to(self, device: torch.device | str) -> EMA:
        self.module.to(device)
        return self
