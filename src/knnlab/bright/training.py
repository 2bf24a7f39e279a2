"""Training a BRIGHT autoencoder (or a VQ / RQ / KL baseline) on the shared loop.

The release's recipe: loss ``20·MSE + 5·perceptual (VGG16 features, L1) + non-saturating GAN``
(StyleGAN2 ResNet discriminator, lazy R1 γ = 4 every 16 steps, starting after some steps), Adam
lr 2e-3, betas (0, 0.99). Here:

- the MSE is taken on images in [0, 1] (the release's images are in [−1, 1], where the same
  weight counts 4× more);
- the perceptual term is a pluggable ``perceptual(recon, target) -> loss``; it is off by default
  because no VGG16 weights are available offline;
- the GAN term (``gan=True``) runs on :class:`knnlab.train.MultiTrainer` as three phases: the
  autoencoder ("G": reconstruction + ``gan_weight`` · non-saturating loss from ``gan_start`` on), the
  StyleGAN2 ResNet discriminator ("D") and its lazy R1 (γ = 4 every 16 steps, loss × 16); images
  are zero-padded to a power-of-two side for the discriminator (MNIST: 28 → 32);
- baselines add their own regulariser (VQ/RQ commitment loss; KL weight 1e-6) to the same loss.

``train_autoencoder`` writes ``out/model`` (``save_pretrained``; the EMA weights when EMA is on),
the loop's ``log.jsonl`` and checkpoints (``resume=True`` continues), and ``out/summary.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from knnlab.bright.autoencoder import BrightAutoencoder, bright_config
from knnlab.bright.baselines import BASELINES, BaselineAutoencoder, baseline_config
from knnlab.bright.data import ImageTensorDataset, load_image_set
from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json

__all__ = ["BrightTrainConfig", "build_autoencoder", "load_autoencoder", "train_autoencoder"]

log = logging.getLogger(__name__)

Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class BrightTrainConfig:
    """``knnlab train bright``: the release's losses and optimiser, shortened to ``steps``."""

    data: str = "MNIST"  # MNIST, CelebA6000 or a folder of images
    config: str = "tiny"  # tiny | celeba64 | ffhq256
    baseline: str | None = None  # None (BRIGHT) | vq | rq | kl
    steps: int = 2000
    batch_size: int = 16
    lr: float = 2e-3
    betas: tuple[float, float] = (0.0, 0.99)
    mse_weight: float = 20.0
    perceptual_weight: float = 5.0  # used only when a perceptual function is given
    gan: bool = False  # add the non-saturating GAN term (StyleGAN2 ResNet D, lazy R1)
    gan_weight: float = 1.0  # weight of the generator's adversarial loss
    gan_start: int = 0  # the adversarial terms start at this step (D and G alike)
    r1_gamma: float = 4.0  # R1 weight gamma (lazy: every r1_every steps, loss x r1_every)
    r1_every: int = 16
    ema_decay: float | None = None  # e.g. 0.999 for long runs; the saved model is the EMA
    train_limit: int | None = None  # only the first N training images
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 25

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.baseline is not None and self.baseline not in BASELINES:
            raise InputError(f"--baseline {self.baseline!r}: choose one of {', '.join(BASELINES)}")
        if self.gan_start < 0 or self.r1_every < 1 or self.r1_gamma < 0:
            raise InputError(
                f"gan_start={self.gan_start}, r1_every={self.r1_every}, r1_gamma={self.r1_gamma}: "
                "need gan_start >= 0, r1_every >= 1 and r1_gamma >= 0"
            )
        if self.steps < 1:
            raise InputError(f"--steps {self.steps}: must be >= 1")

    @property
    def method(self) -> str:
        return "bright" if self.baseline is None else self.baseline


def build_autoencoder(config: str, baseline: str | None = None, *, seed: int = 0) -> nn.Module:
    """A fresh BRIGHT autoencoder of preset ``config``, or the ``baseline`` at its code size."""
    bc = bright_config(config)
    # the conv initialisers draw from the global RNG: seed a forked copy, leave the caller's alone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if baseline is None:
            return BrightAutoencoder(bc, generator=torch.Generator().manual_seed(seed))
        return BaselineAutoencoder(baseline_config(baseline, bc))


def load_autoencoder(directory: str | Path) -> nn.Module:
    """A BRIGHT or baseline autoencoder folder written by ``save_pretrained`` (eval mode)."""
    import json

    path = Path(directory) / "config.json"
    kind = json.loads(path.read_text()).get("model_type") if path.is_file() else None
    if kind == "BaselineAutoencoder":
        return BaselineAutoencoder.from_pretrained(directory)
    return BrightAutoencoder.from_pretrained(directory)


def reconstruct(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(reconstruction, regulariser)`` for either kind of autoencoder."""
    out = model(x)
    if len(out) == 3:  # baseline: (recon, reg, code)
        return out[0], out[1]
    return out[0], out[0].new_zeros(())


def train_autoencoder(
    cfg: BrightTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    perceptual: Perceptual | None = None,
    train_images: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Train, save ``out_dir/model`` and return (and write to ``summary.json``) the run summary."""
    from knnlab.train import TrainConfig, Trainer

    out_dir = Path(out_dir)
    model: Any = build_autoencoder(cfg.config, cfg.baseline, seed=cfg.seed)
    mc: Any = model.config
    if train_images is None:
        train_images = load_image_set(
            cfg.data, "train", size=mc.image_size, channels=mc.image_channels,
            limit=cfg.train_limit,
        )  # fmt: skip
    tcfg = TrainConfig(
        steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed, optimizer="adam", lr=cfg.lr,
        betas=cfg.betas, ema_decay=cfg.ema_decay, log_every=min(cfg.log_every, cfg.steps),
        checkpoint_every=cfg.checkpoint_every, out_dir=out_dir, device=device, tensorboard=False,
        extra={"bright": asdict(cfg)},
    )  # fmt: skip

    def loss_fn(net: nn.Module, x: torch.Tensor):
        recon, reg = reconstruct(net, x)
        mse = F.mse_loss(recon, x)
        loss = cfg.mse_weight * mse + reg
        logs: dict[str, Any] = {"mse": mse.detach(), "reg": reg.detach()}
        if perceptual is not None:
            p = perceptual(recon, x)
            loss = loss + cfg.perceptual_weight * p
            logs["perceptual"] = p.detach()
        with torch.no_grad():
            logs["psnr"] = (-10 * torch.log10(mse.clamp_min(1e-12))).detach()
        return loss, logs

    data = ImageTensorDataset(train_images)
    t0 = time.perf_counter()
    trainer: Any
    if not cfg.gan:
        trainer = Trainer(model, tcfg, loss_fn, data)
        result = trainer.fit(resume=resume)
        final: Any = trainer.ema.module if trainer.ema is not None else trainer.model
    else:
        trainer, result, final = _fit_with_gan(model, cfg, tcfg, loss_fn, data, resume=resume)
    final.eval()
    final.save_pretrained(out_dir / "model")
    summary = {
        "method": cfg.method,
        "config": asdict(cfg),
        "code_shape": list(mc.code_shape),
        "steps": result.step,
        "train_seconds": round(trainer.elapsed, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "last_log": result.last_log,
        "model_dir": str(out_dir / "model"),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _pad_pow2(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad ``(B, C, H, W)`` on the right and bottom to a square power-of-two side (≥ 8)."""
    side = max(8, 1 << (max(x.shape[-2:]) - 1).bit_length())
    return F.pad(x, (0, side - x.shape[-1], 0, side - x.shape[-2]))


def _fit_with_gan(model, cfg: BrightTrainConfig, tcfg, recon_loss, data, *, resume: bool):
    """Reconstruction + non-saturating GAN with lazy R1 on :class:`knnlab.train.MultiTrainer`."""
    from knnlab.bright.discriminator import (
        ResNetDiscriminator,
        d_loss_nonsaturating,
        g_loss_nonsaturating,
        r1_penalty,
    )
    from knnlab.train import EMA, MultiTrainer, Phase

    mc: Any = model.config
    side = _pad_pow2(torch.zeros(1, 1, mc.image_size, mc.image_size)).shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1)
        disc = ResNetDiscriminator(side, channels=mc.image_channels)
    opt_g = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)

    def g_loss(models, x, ctx):
        loss, logs = recon_loss(models["G"], x)
        if ctx.step >= cfg.gan_start:
            recon, _ = reconstruct(models["G"], x)
            adv = g_loss_nonsaturating(models["D"](_pad_pow2(recon)))
            loss = loss + cfg.gan_weight * adv
            logs["g_adv"] = adv.detach()
        return loss, logs

    def d_loss(models, x, ctx):
        with torch.no_grad():
            recon, _ = reconstruct(models["G"], x)
        d = d_loss_nonsaturating(models["D"](_pad_pow2(x)), models["D"](_pad_pow2(recon)))
        on = float(ctx.step >= cfg.gan_start)  # before gan_start: a zero loss, no update
        return d * on, {"d_loss": d.detach()}

    def d_r1(models, x, ctx):
        r1 = r1_penalty(models["D"], _pad_pow2(x), gamma=cfg.r1_gamma)
        return r1 * float(ctx.step >= cfg.gan_start), {"r1": r1.detach()}

    phases = [
        Phase("G", "G", g_loss),
        Phase("D", "D", d_loss),
        Phase("D_r1", "D", d_r1, every=cfg.r1_every),
    ]
    emas = {"G": EMA(model, cfg.ema_decay)} if cfg.ema_decay is not None else None
    trainer = MultiTrainer(
        {"G": model, "D": disc}, {"G": opt_g, "D": opt_d}, phases, tcfg, data, emas=emas
    )
    result = trainer.fit(resume=resume)
    final = trainer.emas["G"].module if emas else trainer.models["G"]
    return trainer, result, final
