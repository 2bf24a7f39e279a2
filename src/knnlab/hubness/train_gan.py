"""Training of the built-in GANs (MNIST 28x28, CelebA 64x64) on the shared loop.

Loss: the non-saturating GAN loss (Goodfellow et al. 2014, sec. 3) with a spectrally normalised
discriminator (Miyato et al. 2018), optionally lazy R1 (StyleGAN2); Adam(2e-4, betas 0.5/0.999) as
in DCGAN; the mapping network learns at 0.1x the rate (StyleGAN uses 0.01x for its 8-layer
mapping). Each step is two phases of :class:`~knnlab.train.MultiTrainer` (D, then G); latents come
from ``ctx.randn``, so a run does not depend on the number of torchrun processes' RNG streams.
Deterministic for a given seed on CPU: ``knnlab train gan`` reproduces the shipped weights in
``knnlab/assets/gan/``; it resumes (``--resume``) bitwise.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from knnlab.errors import InputError
from knnlab.hubness.gan import Discriminator, GANConfig, Generator
from knnlab.train import (
    EMA,
    MultiTrainer,
    Phase,
    StepContext,
    TrainConfig,
    lr_scaled_groups,
    r1_penalty,
    read_jsonl,
)

__all__ = [
    "ImageTensorData",
    "TrainGANConfig",
    "image_grid",
    "load_celeba64_uint8",
    "load_mnist_uint8",
    "recipe",
    "save_grid_png",
    "train_gan",
]

log = logging.getLogger(__name__)


@dataclass
class TrainGANConfig:
    """Hyper-parameters of ``knnlab train gan`` (defaults: the shipped MNIST weights)."""

    steps: int = 2500  # steps; each updates D once, then G once
    batch_size: int = 64  # global batch (split over torchrun processes)
    lr: float = 2e-4  # Adam learning rate of G and D
    betas: tuple[float, float] = (0.5, 0.999)
    mapping_lr_mult: float = 0.1  # learning-rate multiplier of the mapping network
    r1_gamma: float = 0.0  # R1 weight gamma (0: off; the MNIST recipe relies on spectral norm)
    r1_every: int = 16  # lazy R1: every N steps, loss x N (StyleGAN2)
    ema_decay: float | None = None  # keep an EMA of G (with ramp-up) and ship it (None: raw G)
    ema_rampup: float = 0.05  # StyleGAN2-ADA's ema_rampup
    accum_steps: int = 1  # gradient accumulation (micro-batches per process)
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16" (CUDA) | "auto"
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 500  # resumable checkpoints in the run folder


class ImageTensorData(Dataset):
    """uint8 images ``(N, C, H, W)`` as float ``(C, H, W)`` in ``[-1, 1]``; item i depends on i only."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i].float().div(127.5).sub(1.0)


def load_mnist_uint8(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` ("train" or "test") as uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``
    (through :func:`knnlab.data.load_mnist`)."""
    from knnlab.data import load_mnist

    x, y = load_mnist(split)
    return x.numpy(), y.numpy()


CELEBA_SPLITS = {
    "train": "train_dataset",
    "validation": "validation_dataset",
    "test": "test_dataset",
}


def celeba64_transform(image: Any, size: int = 64) -> np.ndarray:
    """A 178x218 aligned CelebA photo (PIL image) -> uint8 ``(3, size, size)``: the centre 178x178
    square (as in the DCGAN / WGAN-GP CelebA-64 setups), resized with PIL's antialiased bicubic."""
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    sq = image.convert("RGB").crop((left, top, left + side, top + side))
    return np.asarray(sq.resize((size, size), Image.Resampling.BICUBIC)).transpose(2, 0, 1).copy()


def load_celeba64_uint8(split: str = "train", root: str | Path | None = None) -> np.ndarray:
    """CelebA6000 ``split`` ("train": 4800 images, "validation", "test": 600 each, from
    ``manifest.tsv``) as uint8 ``(N, 3, 64, 64)``, in manifest order."""
    from PIL import Image

    from knnlab.data import dataset_dir
    from knnlab.errors import DataNotFoundError

    if split not in CELEBA_SPLITS:
        raise InputError(f"split={split!r}; CelebA6000 has {', '.join(CELEBA_SPLITS)}")
    folder = dataset_dir("CelebA6000", root)
    manifest = folder / "manifest.tsv"
    if not manifest.is_file():
        raise DataNotFoundError(
            f"{manifest} not found; get the set with `knnlab data download CelebA6000`"
        )
    rows = [line.split("\t") for line in manifest.read_text(encoding="utf-8").splitlines()[1:]]
    files = [r[0] for r in rows if len(r) > 1 and r[1] == CELEBA_SPLITS[split]]
    out = np.empty((len(files), 3, 64, 64), dtype=np.uint8)
    for i, name in enumerate(files):
        path = folder / "images" / name
        try:
            with Image.open(path) as im:
                out[i] = celeba64_transform(im)
        except OSError as e:
            raise DataNotFoundError(f"{path}: cannot read this CelebA image ({e})") from e
    return out


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


def recipe(name: str, seed: int = 0) -> tuple[TrainGANConfig, GANConfig]:
    """The training and model configs of a shipped GAN: ``"mnist"`` (assets/gan) or
    ``"celeba64"`` (assets/gan_celeba64: 64x64 RGB, 128-d latents, G width 128, D width 16,
    batch 32, lazy R1 with gamma 0.1 every 16 steps; sized to train in about 25 minutes on one
    shared CPU core)."""
    if name == "mnist":
        return TrainGANConfig(seed=seed), GANConfig()
    if name == "celeba64":
        train = TrainGANConfig(
            steps=1500, batch_size=32, seed=seed, r1_gamma=0.1, checkpoint_every=250
        )
        model = GANConfig(
            latent_dim=128, w_dim=128, g_channels=128, d_channels=16, image_size=64,
            image_channels=3,
        )  # fmt: skip
        return train, model
    raise InputError(f"GAN recipe {name!r}: choose mnist or celeba64")


def _phases(cfg: TrainGANConfig, latent_dim: int) -> list[Phase]:
    def d_loss(m: Any, real: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        # discriminator: softplus(-D(x)) + softplus(D(G(z)))
        with torch.no_grad():
            fake = m["G"](ctx.randn(latent_dim))
        d_real, d_fake = m["D"](real), m["D"](fake)
        loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return loss, {"d_real": d_real.mean(), "d_fake": d_fake.mean()}

    def g_loss(m: Any, real: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        # generator: non-saturating softplus(-D(G(z)))
        return F.softplus(-m["D"](m["G"](ctx.randn(latent_dim)))).mean(), {}

    def r1_loss(m: Any, real: torch.Tensor, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        return r1_penalty(m["D"], real, cfg.r1_gamma), {}

    phases = [Phase("D", "D", d_loss), Phase("G", "G", g_loss)]
    if cfg.r1_gamma > 0:
        phases.append(Phase("D_r1", "D", r1_loss, every=cfg.r1_every))
    return phases


def _history_record(record: dict[str, Any]) -> dict[str, float]:
    """A trainer log line in the shipped ``train_log.jsonl`` format."""
    names = {"D/loss": "loss_d", "G/loss": "loss_g", "D/d_real": "d_real", "D/d_fake": "d_fake"}
    names["D_r1/loss"] = "loss_r1"
    rec: dict[str, float] = {"step": record["step"], "seconds": round(record["time"], 1)}
    rec.update({v: round(record[k], 4) for k, v in names.items() if k in record})
    return rec


def train_gan(
    x_train: np.ndarray | torch.Tensor,
    config: TrainGANConfig | None = None,
    gan_config: GANConfig | None = None,
    device: str | torch.device = "cpu",
    log_fn: Any = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
) -> tuple[Generator, Discriminator, list[dict[str, float]]]:
    """Train a :class:`Generator` / :class:`Discriminator` pair on uint8 images ``(N, H, W)``
    (gray) or ``(N, C, H, W)`` on the shared loop (:class:`~knnlab.train.MultiTrainer`).

    ``run_dir`` holds the checkpoints and ``log.jsonl`` (a temporary folder when None);
    ``resume=True`` continues from its latest checkpoint. Runs unchanged under torchrun.
    Returns the generator (its EMA when ``ema_decay`` is set; eval mode), the discriminator and
    the loss history (one dict per ``log_every`` steps); ``log_fn(record)`` gets each record.
    """
    cfg = config or TrainGANConfig()
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise InputError(f"steps={cfg.steps}, batch_size={cfg.batch_size}: need >= 1 and >= 2")
    x = torch.as_tensor(x_train)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise InputError(f"x_train: {tuple(x.shape)} {x.dtype}; expected uint8 (N, [C,] H, W)")
    gcfg = gan_config or GANConfig()
    if (x.shape[1], x.shape[2]) != (gcfg.image_channels, gcfg.image_size):
        raise InputError(
            f"x_train images are {tuple(x.shape[1:])}; the GAN config makes "
            f"({gcfg.image_channels}, {gcfg.image_size}, {gcfg.image_size})"
        )
    torch.manual_seed(cfg.seed)  # parameter init
    G, D = Generator(gcfg), Discriminator(gcfg)
    opt_g = torch.optim.Adam(
        lr_scaled_groups(G, {"mapping": cfg.mapping_lr_mult}), lr=cfg.lr, betas=cfg.betas
    )
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    emas = {"G": EMA(G, cfg.ema_decay, rampup=cfg.ema_rampup)} if cfg.ema_decay else {}
    history: list[dict[str, float]] = []

    def on_step(trainer: MultiTrainer, step: int, record: dict[str, Any]) -> None:
        if record and trainer.is_main:
            rec = _history_record(record)
            history.append(rec)
            log.info("gan %s", rec)
            if log_fn is not None:
                log_fn(rec)

    with tempfile.TemporaryDirectory(prefix="knnlab-gan-") as tmp:
        tcfg = TrainConfig(
            steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed, lr=cfg.lr,
            accum_steps=cfg.accum_steps, precision=cfg.precision, log_every=cfg.log_every,
            checkpoint_every=cfg.checkpoint_every, out_dir=run_dir or tmp, device=str(device),
            tensorboard=False, extra={"gan": train_config_dict(cfg), "gan_config": asdict(gcfg)},
        )  # fmt: skip
        trainer = MultiTrainer(
            {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, _phases(cfg, G.latent_dim), tcfg,
            ImageTensorData(x), emas=emas, callbacks=[on_step],
        )  # fmt: skip
        trainer.fit(resume=resume)
    if resume and run_dir is not None and trainer.is_main:  # the whole run's history
        history = [_history_record(r) for r in read_jsonl(Path(run_dir) / "log.jsonl")]
    out = trainer.emas["G"].module if emas else trainer.models["G"]
    G_out: Any = out
    G_out.eval()
    return G_out, D, history


def train_config_dict(cfg: TrainGANConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["betas"] = list(cfg.betas)
    return d
