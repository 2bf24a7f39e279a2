"""Training of the built-in GAN (and of the MNIST feature classifier) on MNIST.

Loss: the non-saturating GAN loss (Goodfellow et al. 2014, sec. 3) with a spectrally normalised
discriminator (Miyato et al. 2018); Adam(2e-4, betas 0.5/0.999) as in DCGAN; the mapping network
learns at 0.1x the rate (StyleGAN uses 0.01x for its 8-layer mapping). Deterministic for a given seed
on CPU: ``knnlab train gan`` reproduces the shipped weights in ``knnlab/assets/gan/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from knnlab.errors import InputError
from knnlab.hubness.gan import Discriminator, GANConfig, Generator

__all__ = ["TrainGANConfig", "image_grid", "load_mnist_uint8", "save_grid_png", "train_gan"]

log = logging.getLogger(__name__)


@dataclass
class TrainGANConfig:
    """Hyper-parameters of ``knnlab train gan`` (defaults: the shipped weights)."""

    steps: int = 2500  # generator updates (one discriminator update each)
    batch_size: int = 64
    lr: float = 2e-4  # Adam learning rate of G and D
    betas: tuple[float, float] = (0.5, 0.999)
    mapping_lr_mult: float = 0.1  # learning-rate multiplier of the mapping network
    seed: int = 0
    log_every: int = 100


def load_mnist_uint8(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` ("train" or "test") as uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``
    (through :func:`knnlab.data.load_mnist`)."""
    from knnlab.data import load_mnist

    x, y = load_mnist(split)
    return x.numpy(), y.numpy()


def image_grid(
    images: torch.Tensor, nrow: int = 8, pad: int = 2, value: float = 0.5
) -> torch.Tensor:
    """Tile ``(B, C, H, W)`` images in [0, 1] into one ``(C, H', W')`` image, ``nrow`` per row."""
    b, c, h, w = images.shape
    ncol = nrow
    nrows = (b + ncol - 1) // ncol
    grid = torch.full((c, nrows * (h + pad) + pad, ncol * (w + pad) + pad), value)
    for i in range(b):
        r, q = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, y0 : y0 + h, x0 : x0 + w] = images[i].detach().cpu().float()
    return grid


def save_grid_png(images: torch.Tensor, path: str | Path, nrow: int = 8, scale: int = 2) -> Path:
    """Write a grid of ``(B, C, H, W)`` images in [0, 1] as a PNG (nearest-upscaled by ``scale``)."""
    from knnlab.io_utils import atomic_write_bytes
    from knnlab.report import image_to_png_bytes

    grid = image_grid(images, nrow=nrow)
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    atomic_write_bytes(path, image_to_png_bytes(grid))
    return Path(path)


def train_gan(
    x_train: np.ndarray,
    config: TrainGANConfig | None = None,
    gan_config: GANConfig | None = None,
    device: str | torch.device = "cpu",
    log_fn: Any = None,
) -> tuple[Generator, Discriminator, list[dict[str, float]]]:
    """Train a :class:`Generator` / :class:`Discriminator` pair on uint8 images ``(N, 28, 28)``.

    Returns the generator (eval mode), the discriminator and the loss history (one dict per
    ``log_every`` steps). ``log_fn(record)`` is called with each record if given.
    """
    cfg = config or TrainGANConfig()
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise InputError(f"steps={cfg.steps}, batch_size={cfg.batch_size}: need >= 1 and >= 2")
    dev = torch.device(device)
    gen_rng = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # parameter init
    G = Generator(gan_config).to(dev)
    D = Discriminator(gan_config).to(dev)
    G.train()
    D.train()
    mapping_params = list(G.mapping.parameters())
    other_params = [p for n, p in G.named_parameters() if not n.startswith("mapping.")]
    groups: list[dict[str, Any]] = [
        {"params": other_params},
        {"params": mapping_params, "lr": cfg.lr * cfg.mapping_lr_mult},
    ]
    opt_g = torch.optim.Adam(
        groups,
        lr=cfg.lr,
        betas=cfg.betas,
    )
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    x = torch.from_numpy(x_train).float().div(127.5).sub(1.0).unsqueeze(1)  # [-1, 1]
    n, bs, zd = len(x), cfg.batch_size, G.latent_dim
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    acc = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0}
    for step in range(1, cfg.steps + 1):
        # discriminator: softplus(-D(x)) + softplus(D(G(z)))
        real = x[torch.randint(0, n, (bs,), generator=gen_rng)].to(dev)
        z = torch.randn(bs, zd, generator=gen_rng).to(dev)
        with torch.no_grad():
            fake = G(z)
        d_real, d_fake = D(real), D(fake)
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # generator: non-saturating softplus(-D(G(z)))
        z = torch.randn(bs, zd, generator=gen_rng).to(dev)
        loss_g = F.softplus(-D(G(z))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        acc["loss_d"] += loss_d.item()
        acc["loss_g"] += loss_g.item()
        acc["d_real"] += d_real.mean().item()
        acc["d_fake"] += d_fake.mean().item()
        if step % cfg.log_every == 0 or step == cfg.steps:
            k = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
            rec = {"step": step, "seconds": round(time.perf_counter() - t0, 1)}
            rec.update({key: round(v / k, 4) for key, v in acc.items()})
            acc = dict.fromkeys(acc, 0.0)
            history.append(rec)
            log.info("gan %s", rec)
            if log_fn is not None:
                log_fn(rec)
    G.eval()
    return G, D, history


def train_config_dict(cfg: TrainGANConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["betas"] = list(cfg.betas)
    return d
