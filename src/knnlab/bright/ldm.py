"""Training latent diffusion over an autoencoder's codes on the shared loop (``knnlab.train``).

The recipe of BRIGHT's second stage (Yang et al. 2023, sec. 4; its release used imagen-pytorch):
codes of the training images, encoded *without* the training noise, mapped to the UNet's space by a
:class:`~knnlab.bright.pipeline.CodeMap`; a ``diffusers.UNet2DModel`` predicts the noise ε of
``x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε`` at a uniform random step t (DDPM's simple L2 loss, Ho et al. 2020,
eq. 14); Adam at lr 8e-5 with an EMA of the weights. Sampling uses DDIM (Song et al. 2021) from the
same betas.

UNet sizes (:data:`UNET_PRESETS`): ``"release"`` is the release's UNet for 64×64×4 codes (width 256,
multipliers 1, 2, 3, 4, two res-blocks a level, attention at the three lowest resolutions);
``"small"`` and ``"tiny"`` train on a CPU in minutes for MNIST and CelebA-64 codes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from knnlab.bright.pipeline import CodeMap, KeyCodeDiffusionPipeline
from knnlab.bright.schedule import make_betas
from knnlab.errors import InputError

__all__ = [
    "UNET_PRESETS",
    "LDMConfig",
    "code_map_for",
    "encode_codes",
    "make_scheduler",
    "make_unet",
    "train_ldm",
]

log = logging.getLogger(__name__)

#: name -> (block_out_channels, layers_per_block, attention at these levels (0 = full resolution))
UNET_PRESETS: dict[str, tuple[tuple[int, ...], int, tuple[int, ...]]] = {
    "tiny": ((32, 64), 1, (1,)),
    "small": ((64, 128, 128), 1, (2,)),
    "release": ((256, 512, 768, 1024), 2, (1, 2, 3)),
}


@dataclass
class LDMConfig:
    """Latent diffusion training, defaults as released except the size and length of the run."""

    unet: str = "tiny"  # a key of UNET_PRESETS
    schedule: str = "cosine_variant"  # "linear" | "cosine" | "cosine_variant" (the release's)
    train_timesteps: int = 1000  # T of the forward process
    steps: int = 2000  # optimisation steps
    batch_size: int = 64
    lr: float = 8e-5  # Adam, as released
    ema_decay: float | None = 0.999
    ema_rampup: float | None = 0.1  # half-life at most 10% of the steps so far: at 10^3 steps a
    # plain 0.999 average would still hold 0.999^1000 = 37% of the random initial weights
    grad_clip: float | None = 1.0
    seed: int = 0
    out_dir: str = "runs/bright-ldm"
    device: str = "auto"
    log_every: int = 50
    checkpoint_every: int | None = 500

    def validate(self) -> None:
        if self.unet not in UNET_PRESETS:
            raise InputError(f"unet={self.unet!r}: choose from {', '.join(UNET_PRESETS)}")
        if self.steps < 1 or self.batch_size < 1:
            raise InputError(f"steps={self.steps}, batch_size={self.batch_size}: both must be >= 1")


def make_unet(preset: str, channels: int, size: int) -> Any:
    """A ``diffusers.UNet2DModel`` for codes ``(B, channels, size, size)``."""
    from diffusers import UNet2DModel

    if preset not in UNET_PRESETS:
        raise InputError(f"unet={preset!r}: choose from {', '.join(UNET_PRESETS)}")
    widths, layers, attn = UNET_PRESETS[preset]
    levels = len(widths)
    if size % (2 ** (levels - 1)):
        raise InputError(
            f"codes of side {size} cannot be halved {levels - 1} times by the {preset!r} UNet; "
            "use codes whose side is a multiple of " + str(2 ** (levels - 1))
        )
    down = tuple("AttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if i in attn else "UpBlock2D" for i in reversed(range(levels)))
    groups = min(32, widths[0] // 4)
    return UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=widths,
        layers_per_block=layers,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=groups,
        attention_head_dim=min(32, widths[0]),
    )


def make_scheduler(
    schedule: str,
    train_timesteps: int = 1000,
    sampler: str = "ddim",
    clip_range: float | None = None,
) -> Any:
    """A diffusers DDIM (deterministic sampling) or DDPM scheduler over :func:`make_betas`.

    ``clip_range``: clip each step's predicted x_0 to [−r, r] (the codes' own bounds, e.g. 1 for
    key codes mapped to [−1, 1]); without it, the ε-prediction at the noisiest steps (ᾱ down to 1e-9
    in the cosine-variant schedule) is divided by √ᾱ and can throw samples far out of range.
    """
    from diffusers import DDIMScheduler, DDPMScheduler

    betas = make_betas(schedule, train_timesteps).astype("float32").tolist()
    common: dict[str, Any] = {
        "num_train_timesteps": train_timesteps,
        "trained_betas": betas,
        "prediction_type": "epsilon",
        "clip_sample": clip_range is not None,
    }
    if clip_range is not None:
        common["clip_sample_range"] = float(clip_range)
    if sampler == "ddim":
        return DDIMScheduler(**common, set_alpha_to_one=False)
    if sampler == "ddpm":
        return DDPMScheduler(**common)
    raise InputError(f"sampler={sampler!r}: choose 'ddim' or 'ddpm'")


@torch.no_grad()
def encode_codes(
    autoencoder: nn.Module, images: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Codes of ``images (N, C, H, W)`` in [0, 1] by ``autoencoder.encode`` in eval mode (no
    training noise), on the autoencoder's device; returned on the CPU."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    out = [
        autoencoder.encode(images[i : i + batch_size].to(device)).float().cpu()  # type: ignore[operator]
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def train_ldm(
    codes: torch.Tensor,
    autoencoder: nn.Module,
    code_map: CodeMap,
    cfg: LDMConfig,
    *,
    resume: bool = False,
) -> KeyCodeDiffusionPipeline:
    """Train a UNet on ``codes (N, C, h, w)`` and return the pipeline (EMA weights when on).

    Runs on :class:`knnlab.train.Trainer`: resumable, torchrun-ready, JSONL log in ``cfg.out_dir``.
    """
    from safetensors.torch import load_file

    from knnlab.train import TrainConfig, Trainer, seed_everything

    cfg.validate()
    if codes.ndim != 4 or codes.shape[2] != codes.shape[3]:
        raise InputError(f"codes have shape {tuple(codes.shape)}; expected (N, C, h, h)")
    n, c, h, _ = codes.shape
    if (c, h) != (code_map.channels, code_map.height):
        raise InputError(f"codes {tuple(codes.shape)} do not match the code map {code_map}")
    x0 = code_map.to_model(codes.float())
    seed_everything(cfg.seed)  # the initial weights: torch's own start-up seed is random
    unet = make_unet(cfg.unet, c, h)
    scheduler = make_scheduler(cfg.schedule, cfg.train_timesteps, "ddim", code_map.model_range())
    alphas = scheduler.alphas_cumprod.clone()  # (T,) float32, CPU
    steps = cfg.train_timesteps

    def loss_fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        (x,) = batch
        t = torch.randint(0, steps, (x.shape[0],), device=x.device)
        eps = torch.randn_like(x)
        a = alphas.to(x.device)[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x + (1 - a).sqrt() * eps
        loss = torch.nn.functional.mse_loss(model(xt, t).sample, eps)
        return loss, {}

    tcfg = TrainConfig(
        steps=cfg.steps,
        batch_size=min(cfg.batch_size, n),
        lr=cfg.lr,
        betas=(0.9, 0.99),
        grad_clip=cfg.grad_clip,
        ema_decay=cfg.ema_decay,
        ema_rampup=cfg.ema_rampup,
        seed=cfg.seed,
        out_dir=cfg.out_dir,
        device=cfg.device,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        tensorboard=False,
    )
    result = Trainer(unet, tcfg, loss_fn, TensorDataset(x0)).fit(resume=resume)
    weights = result.ema_path if result.ema_path is not None else result.model_path
    unet.load_state_dict(load_file(str(weights)))
    unet.cpu().eval()
    code_map.extra.setdefault("schedule", cfg.schedule)
    code_map.extra.setdefault("train_steps", cfg.steps)
    return KeyCodeDiffusionPipeline(unet, scheduler, autoencoder.cpu().eval(), code_map)


def code_map_for(
    kind: str, codes: torch.Tensor | None = None, *, shape: tuple[int, ...]
) -> CodeMap:
    """The code map of an autoencoder kind: ``"keys"`` (BRIGHT, codes in (0, 1)) or ``"gaussian"``
    (KL latents and VQ embeddings: centred and scaled to unit variance by the training codes)."""
    c, h, w = shape
    if kind == "keys":
        return CodeMap(c, h, w, shift=0.5, scale=2.0, clip_min=0.0, clip_max=1.0)
    if kind == "gaussian":
        if codes is None:
            raise InputError(
                "code_map_for('gaussian') needs the training codes for their statistics"
            )
        mean = float(codes.double().mean())
        std = float(codes.double().std()) or 1.0
        return CodeMap(c, h, w, shift=mean, scale=1.0 / std, clip_min=None, clip_max=None)
    raise InputError(f"kind={kind!r}: choose 'keys' or 'gaussian'")
