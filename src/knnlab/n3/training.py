"""Training N³Net or DnCNN for Gaussian denoising with the released recipe (visinf/n3net ``main.py``).

Recipe (the defaults of :class:`DenoiseTrainConfig`): random 80×80 crops of Train400 with the 8 flips
and 90° rotations, noise σ/255 · N(0, 1) added on the fly (fresh every step, not clipped), batch 32,
Adam (β = 0.9, 0.999, ε = 1e-8) with lr 1e-3 and weight decay 1e-4 (none on biases), learning rate
× 10^(−3·epoch/50) for epochs 0 … 50 of 1600 iterations (51 epochs, 81 600 steps); loss
``½ Σ (pred − clean)² · 1600 / p²`` per crop, averaged over the batch (the released scaling, which
matters because of the weight decay). BatchNorm layers start as in DnCNN (momentum 0.001).

The released run ends with a 52nd epoch at learning rate 0, which only refreshes the BatchNorm running
statistics; here the statistics are instead recomputed exactly at the end (cumulative average over
``bn_batches`` training batches in train mode), which also makes short runs usable: with momentum 0.001
a few hundred steps leave them near their initial values.

``budget_steps`` shortens the run: the same schedule compressed onto that many steps.

Released training used the 400 full BSDS500 train+test images; Train400 is the DnCNN authors' 400
180×180 crops of them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.io_utils import atomic_write_json

__all__ = [
    "DenoiseTrainConfig",
    "build_model",
    "denoise_loss",
    "parameter_groups",
    "recalibrate_batchnorm",
    "train_denoiser",
]

log = logging.getLogger(__name__)


@dataclass
class DenoiseTrainConfig:
    """``knnlab train denoise``: the released N³Net recipe, shortened by ``budget_steps``."""

    model: str = "n3net"  # "n3net" or "dncnn" (17 layers)
    sigma: float = 25.0  # noise level, 0-255 scale
    dataset: str = "Train400"  # training images (a data set name or a folder)
    patch_size: int = 80  # square random crops
    batch_size: int = 32
    epochs: int = 51  # epochs 0..50, lr × 10^(-3·epoch/50)
    steps_per_epoch: int = 1600  # 128 passes over 400 images / batch 32
    budget_steps: int | None = None  # stop after this many steps (schedule compressed to fit)
    lr: float = 1e-3
    weight_decay: float = 1e-4  # Adam L2 penalty, not on biases
    lr_decades_per_50_epochs: float = 3.0
    bn_batches: int = 32  # batches for the final BatchNorm statistics
    seed: int = 0
    eval_dataset: str | None = "Set12"  # scored at the end (None: skip)
    eval_limit: int | None = None  # only the first N evaluation images
    checkpoint_every: int = 500
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.model not in ("n3net", "dncnn"):
            raise InputError(f"--model {self.model!r}: choose n3net or dncnn")
        if self.budget_steps is not None and self.budget_steps < 1:
            raise InputError(f"--budget-steps {self.budget_steps}: must be at least 1")
        if self.model == "n3net" and self.patch_size < 76:
            raise InputError(f"--patch-size {self.patch_size}: N3Net needs at least 76")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise InputError(f"--sigma {self.sigma}: must be a positive number (0-255 scale)")
        if self.bn_batches < 1:
            raise InputError(f"--bn-batches {self.bn_batches}: must be at least 1")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise InputError(f"--eval-limit {self.eval_limit}: must be at least 1")

    @property
    def full_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def steps(self) -> int:
        return min(self.budget_steps or self.full_steps, self.full_steps)

    @property
    def schedule_steps_per_epoch(self) -> int:
        """Steps per (possibly compressed) epoch of the learning-rate schedule."""
        return max(1, math.ceil(self.steps / self.epochs))


def build_model(name: str) -> nn.Module:
    """A freshly initialised released-size model: ``"n3net"`` or ``"dncnn"`` (DnCNN-S, 17 layers)."""
    from knnlab.n3.dncnn import DnCNN
    from knnlab.n3.n3net import N3Net

    if name == "n3net":
        return N3Net()
    if name == "dncnn":
        return DnCNN()
    raise InputError(f"model {name!r}: choose n3net or dncnn")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Adam parameter groups: weight decay on everything but biases (as released)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def denoise_loss(pred: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The released loss: ``½ Σ (pred − clean)² · 1600 / (h·w)`` per image, mean over the batch."""
    h, w = clean.shape[-2:]
    per_image = 0.5 * (pred - clean).pow(2).flatten(1).sum(1) * (1600.0 / (h * w))
    return per_image.mean()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches) -> int:
    """Recompute every BatchNorm's running statistics as the plain average over ``batches`` (inputs
    fed in train mode); returns the number of batches used. Parameters are not changed."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    n = 0
    try:
        for x in batches:
            model(x)
            n += 1
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)
    return n


def _make_eval_fn(cfg: DenoiseTrainConfig, device: torch.device):
    from knnlab.n3.denoise import Denoiser
    from knnlab.n3.evaluate import evaluate_denoiser, load_eval_images

    if cfg.eval_dataset is None:
        return None, None
    label, images = load_eval_images(cfg.eval_dataset, cfg.eval_limit)

    def run(model: nn.Module) -> dict[str, Any]:
        model.eval()
        den = Denoiser(
            f"{cfg.model}-trained", cfg.sigma, model, min_size=int(getattr(model, "min_size", 1)),
            device=device, tile=None,
        )  # fmt: skip
        return evaluate_denoiser(den, images, cfg.sigma, desc=f"eval {label}")

    return label, run


def train_denoiser(
    cfg: DenoiseTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train, recalibrate BatchNorm, save ``out_dir/model`` (``save_pretrained``), evaluate.

    Returns (and writes to ``out_dir/summary.json``) the steps, the time and the evaluation.
    Under torchrun every rank trains; only rank 0 recalibrates BatchNorm, saves, evaluates and
    writes the summary (the other ranks return the training part of it).
    """
    from knnlab.data import PatchDataset
    from knnlab.train import TrainConfig, Trainer, barrier, seed_everything

    out_dir = Path(out_dir)
    device = torch.device(device)
    steps = cfg.steps
    spe = cfg.schedule_steps_per_epoch
    tcfg = TrainConfig(
        steps=steps,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
        optimizer="adam",
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        schedule="exp",
        # with steps_per_epoch set, progress = epoch / (steps / spe): 10^(-3·epoch/50) per epoch
        lr_decay=cfg.lr_decades_per_50_epochs * (steps / spe) / 50.0,
        steps_per_epoch=spe,
        log_every=max(1, min(50, steps // 20 or 1)),
        checkpoint_every=cfg.checkpoint_every,
        out_dir=out_dir,
        device=str(device),
        tensorboard=False,
        extra={"denoise": asdict(cfg)},
    )
    # one distinct random crop per sample of the whole run (items are drawn lazily)
    data = PatchDataset(
        cfg.dataset, cfg.patch_size, length=steps * cfg.batch_size, seed=cfg.seed, channels=1
    )
    seed_everything(cfg.seed)  # the initial weights: torch's own start-up seed is random
    net = build_model(cfg.model)
    optimizer = torch.optim.Adam(
        parameter_groups(net, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8
    )
    sigma = cfg.sigma / 255.0

    def loss_fn(net: nn.Module, clean: torch.Tensor):
        noisy = clean + sigma * torch.randn_like(clean)  # global RNG: seeded/restored by Trainer
        pred = net(noisy)
        loss = denoise_loss(pred, clean)
        with torch.no_grad():
            mse = (pred - clean).pow(2).flatten(1).mean(1).clamp_min(1e-12)
            psnr = (-10.0 * torch.log10(mse)).mean()
        return loss, {"psnr": psnr}

    t0 = time.perf_counter()
    trainer = Trainer(net, tcfg, loss_fn, data, optimizer=optimizer)
    result = trainer.fit(resume=resume)
    train_seconds = trainer.elapsed

    summary: dict[str, Any] = {
        "model": cfg.model,
        "config": asdict(cfg),
        "steps": result.step,
        "seconds": round(train_seconds, 1),
        "last_log": result.last_log,
        "model_dir": str(out_dir / "model"),
    }
    if trainer.is_main:  # under torchrun only rank 0 recalibrates, saves and evaluates
        summary.update(_finish_on_main(cfg, trainer, out_dir, sigma))
        summary["wall_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_json(out_dir / "summary.json", summary)
    barrier()
    return summary


def _finish_on_main(
    cfg: DenoiseTrainConfig, trainer: Any, out_dir: Path, sigma: float
) -> dict[str, Any]:
    """BatchNorm recalibration, ``out_dir/model`` and the evaluation (rank 0's work)."""
    from knnlab.data import PatchDataset

    # final BatchNorm statistics from fresh training batches (replaces the released lr-0 epoch)
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    bn_data = PatchDataset(
        cfg.dataset, cfg.patch_size, length=cfg.bn_batches * cfg.batch_size, seed=cfg.seed + 1,
        channels=1,
    )  # fmt: skip

    def bn_batches():
        for i in range(cfg.bn_batches):
            clean = torch.stack(
                [bn_data[j] for j in range(i * cfg.batch_size, (i + 1) * cfg.batch_size)]
            )
            noise = torch.randn(clean.shape, generator=gen)
            yield (clean + sigma * noise).to(trainer.device)

    model: Any = trainer.model
    n_bn = recalibrate_batchnorm(model, bn_batches())
    model.eval()
    model.save_pretrained(out_dir / "model")
    done: dict[str, Any] = {"bn_recalibration_batches": n_bn}
    label, eval_fn = _make_eval_fn(cfg, trainer.device)
    if eval_fn is not None:
        ev = eval_fn(model)
        done["eval"] = {
            "dataset": label,
            "sigma": cfg.sigma,
            "num_images": len(ev["images"]),
            "results": [ev],
        }
    return done
