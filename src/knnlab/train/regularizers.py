"""Gradient penalties for adversarial training."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["R1Penalty", "r1_penalty"]


def r1_penalty(discriminator: nn.Module, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """The R1 penalty ``gamma / 2 * E_x ||grad_x D(x)||^2`` on real samples ``x``.

    Mescheder et al. 2018 (ICML), eq. 9; StyleGAN2 (Karras et al. 2020, sec. 3.1) applies it
    lazily: every N steps with the loss multiplied by N (``Phase(every=N)`` in
    :class:`~knnlab.train.MultiTrainer` does the multiplication). ``real`` ``(B, ...)``;
    ``discriminator(real)`` gives one logit per sample ``(B,)`` or ``(B, 1)``. Returns a 0-d tensor
    that is differentiable in the discriminator's parameters (double backward). Under fp16
    autocast the inner gradient is not loss-scaled and may underflow: run R1 phases in bf16 or fp32.
    """
    x = real.detach().requires_grad_(True)
    logits = discriminator(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * gamma * grad.pow(2).flatten(1).sum(1).mean()


class R1Penalty(nn.Module):
    """:func:`r1_penalty` with ``gamma`` held: ``R1Penalty(10.0)(D, real)``."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"R1 gamma={gamma} must be >= 0")
        self.gamma = float(gamma)

    def forward(self, discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
        return r1_penalty(discriminator, real, self.gamma)
