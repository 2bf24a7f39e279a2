"""StyleGAN2's ResNet discriminator, the non-saturating GAN loss and the R1 penalty, for BRIGHT's
adversarial term (the release trains with them; ``knnlab train bright --gan`` uses them).

Karras et al. 2020 (StyleGAN2), Fig. 7c "residual" D; Karras et al. 2018 (ProGAN) Sec. 3 for the
minibatch standard deviation; Goodfellow et al. 2014 for the non-saturating loss; Mescheder et
al. 2018 Eq. 9 for R1: ``(γ/2)·E_real ‖∇_x D(x)‖²``, applied lazily every ``k`` steps and scaled by
``k`` (StyleGAN2 Sec. B).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ResNetDiscriminator",
    "d_loss_nonsaturating",
    "g_loss_nonsaturating",
    "minibatch_stddev",
    "r1_penalty",
]


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the std over groups of ``group_size`` samples, averaged over channels
    and pixels, ``(B, C, H, W)`` → ``(B, C + 1, H, W)`` (ProGAN Sec. 3)."""
    b, c, h, w = x.shape
    g = min(group_size, b)
    if b % g:
        g = 1
    y = x.reshape(g, b // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (B/g, C, H, W)
    y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # (B, 1, H, W)
    return torch.cat([x, y], dim=1)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(c_in, c_in, 3, padding=1)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.skip(F.avg_pool2d(x, 2))
        h = F.leaky_relu(self.conv0(x), 0.2)
        h = F.avg_pool2d(F.leaky_relu(self.conv1(h), 0.2), 2)
        return (h + s) / math.sqrt(2)


class ResNetDiscriminator(nn.Module):
    """``(B, C, S, S)`` in [0, 1] → logits ``(B,)``; ``S`` a power of two ≥ 8 (pad MNIST)."""

    def __init__(self, image_size: int, channels: int = 3, width: int = 32, cap: int = 256,
                 group_size: int = 4) -> None:  # fmt: skip
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size={image_size}: must be a power of two >= 8")
        n = int(math.log2(image_size)) - 2  # blocks down to 4×4
        widths = [min(width * 2**i, cap) for i in range(n + 1)]
        self.from_rgb = nn.Conv2d(channels, widths[0], 1)
        self.blocks = nn.Sequential(*[_Block(widths[i], widths[i + 1]) for i in range(n)])
        c = widths[-1]
        self.group_size = group_size
        self.conv = nn.Conv2d(c + 1, c, 3, padding=1)
        self.fc = nn.Linear(c * 16, c)
        self.out = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(F.leaky_relu(self.from_rgb(x * 2 - 1), 0.2))
        h = F.leaky_relu(self.conv(minibatch_stddev(h, self.group_size)), 0.2)
        h = F.leaky_relu(self.fc(h.flatten(1)), 0.2)
        return self.out(h).squeeze(1)


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator: ``E softplus(−D(G(z)))`` = ``−E log σ(D(G(z)))``."""
    return F.softplus(-fake_logits).mean()


def d_loss_nonsaturating(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator: ``E softplus(D(fake)) + E softplus(−D(real))``."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(
    discriminator: nn.Module, real: torch.Tensor, gamma: float = 4.0, every: int = 1
) -> torch.Tensor:
    """``(γ/2)·E ‖∇_x D(x)‖² · every`` on real images (lazy: call every ``every`` steps)."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean() * (gamma / 2) * every
