"""``KeyCodeDiffusionPipeline``: latent diffusion over an autoencoder's codes, diffusers-style.

It holds a ``diffusers.UNet2DModel`` (ε-prediction), a diffusers scheduler and the autoencoder, and
joins them (diffusers' pipelines: no weights of its own, no training)::

    pipe = KeyCodeDiffusionPipeline.from_pretrained("runs/ldm")
    images = pipe(16, num_inference_steps=50, generator=torch.Generator().manual_seed(0))  # (16, C, H, W)

Codes ``z`` of shape ``(B, C, h, w)`` are mapped to the UNet's space by ``x = (z − shift) · scale``
and back by ``z = clip(x / scale + shift, clip_min, clip_max)``: for BRIGHT's key codes in (0, 1)
``shift = 0.5, scale = 2, clip = [0, 1]`` (the paper's ``2·(z − 0.5)`` and ``clip((x + 1)/2, 0, 1)``);
for a KL autoencoder's latents ``shift = mean, scale = 1/std`` of the training codes and no clip
(latent diffusion's scale factor).

``save_pretrained(dir)`` writes ``dir/unet`` and ``dir/scheduler`` (diffusers folders),
``dir/autoencoder`` (knnlab's ``save_pretrained``) and ``dir/pipeline.json``; ``from_pretrained``
reads them back, finding the autoencoder's class by the ``model_type`` in its ``config.json`` among
the classes given to :func:`register_autoencoder`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knnlab.errors import DataNotFoundError, InputError
from knnlab.io_utils import atomic_write_text

__all__ = [
    "AUTOENCODERS",
    "CodeMap",
    "KeyCodeDiffusionPipeline",
    "register_autoencoder",
]

#: model_type -> autoencoder class, for :meth:`KeyCodeDiffusionPipeline.from_pretrained`
AUTOENCODERS: dict[str, type] = {}


def register_autoencoder(cls: type) -> type:
    """Class decorator: let pipelines load this autoencoder class from its saved folder."""
    AUTOENCODERS[cls.__name__] = cls
    return cls


@dataclass
class CodeMap:
    """Affine map between autoencoder codes and the diffusion model's space, and the code shape."""

    channels: int  # C of the codes (B, C, h, w)
    height: int  # h
    width: int  # w
    shift: float = 0.5  # x = (z - shift) * scale
    scale: float = 2.0
    clip_min: float | None = (
        0.0  # z is clipped to [clip_min, clip_max] after sampling (None: no clip)
    )
    clip_max: float | None = 1.0
    extra: dict[str, Any] = field(default_factory=dict)  # free-form provenance (schedule, data ...)

    def model_range(self) -> float | None:
        """The largest |x| that a code within [clip_min, clip_max] maps to (None: unbounded)."""
        if self.clip_min is None or self.clip_max is None:
            return None
        return max(
            abs((self.clip_min - self.shift) * self.scale),
            abs((self.clip_max - self.shift) * self.scale),
        )

    def to_model(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.shift) * self.scale

    def to_codes(self, x: torch.Tensor) -> torch.Tensor:
        z = x / self.scale + self.shift
        if self.clip_min is not None or self.clip_max is not None:
            z = z.clamp(self.clip_min, self.clip_max)
        return z


class KeyCodeDiffusionPipeline:
    """UNet + scheduler + autoencoder; ``__call__`` samples codes and decodes them to images."""

    def __init__(self, unet: nn.Module, scheduler: Any, autoencoder: nn.Module, codes: CodeMap):
        self.unet = unet
        self.scheduler = scheduler
        self.autoencoder = autoencoder
        self.codes = codes

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device: str | torch.device) -> KeyCodeDiffusionPipeline:
        self.unet.to(device)
        self.autoencoder.to(device)
        return self

    def initial_noise(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x_T ~ N(0, I)`` of shape ``(num, C, h, w)`` (on the CPU, so seeds agree across devices)."""
        c = self.codes
        return torch.randn(num, c.channels, c.height, c.width, generator=generator)

    @torch.no_grad()
    def sample_codes(
        self,
        num_images: int,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Codes ``(num_images, C, h, w)`` from ``latents`` (x_T; default: fresh noise)."""
        if num_images < 1:
            raise InputError(f"num_images={num_images}: must be >= 1")
        if num_inference_steps < 1:
            raise InputError(f"num_inference_steps={num_inference_steps}: must be >= 1")
        train_steps = self.scheduler.config.num_train_timesteps
        if num_inference_steps > train_steps:
            raise InputError(
                f"num_inference_steps={num_inference_steps} cannot be larger than the "
                f"{train_steps} training steps of the scheduler"
            )
        if latents is None:
            latents = self.initial_noise(num_images, generator)
        expected = (num_images, self.codes.channels, self.codes.height, self.codes.width)
        if tuple(latents.shape) != expected:
            raise InputError(f"latents have shape {tuple(latents.shape)}; expected {expected}")
        self.unet.eval()
        out = []
        for start in range(0, num_images, batch_size):
            x = latents[start : start + batch_size].to(self.device, torch.float32)
            self.scheduler.set_timesteps(num_inference_steps)
            for t in self.scheduler.timesteps:
                eps = self.unet(x, t).sample
                step_kw: dict[str, Any] = {"generator": generator}
                if "eta" in self.scheduler.step.__code__.co_varnames:
                    step_kw["eta"] = eta
                x = self.scheduler.step(eps, t, x, **step_kw).prev_sample
            out.append(self.codes.to_codes(x).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def __call__(
        self,
        num_images: int,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        eta: float = 0.0,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Images ``(num_images, C, H, W)`` in [0, 1] (DDIM is deterministic given ``latents``)."""
        codes = self.sample_codes(
            num_images, num_inference_steps, generator, latents, eta=eta, batch_size=batch_size
        )
        self.autoencoder.eval()
        decode: Any = self.autoencoder.decode
        images = [
            decode(codes[i : i + batch_size].to(self.device)).clamp(0, 1).cpu()
            for i in range(0, len(codes), batch_size)
        ]
        return torch.cat(images)

    # ---------------------------------------------------------------------------------- files

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(out / "unet")  # type: ignore[operator]
        self.scheduler.save_pretrained(out / "scheduler")
        self.autoencoder.save_pretrained(out / "autoencoder")  # type: ignore[operator]
        meta = {
            "pipeline": type(self).__name__,
            "scheduler_class": type(self.scheduler).__name__,
            "autoencoder": type(self.autoencoder).__name__,
            "codes": asdict(self.codes),
        }
        atomic_write_text(out / "pipeline.json", json.dumps(meta, indent=2) + "\n")
        return out

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, *, map_location: str | torch.device = "cpu"
    ) -> KeyCodeDiffusionPipeline:
        import diffusers

        d = Path(directory)
        meta_path = d / "pipeline.json"
        if not meta_path.is_file():
            raise DataNotFoundError(
                f"{d}: not a key-code diffusion pipeline (no pipeline.json); make one with "
                "knnlab.bright.ldm.train_ldm(...).save_pretrained(DIR)"
            )
        try:
            meta = json.loads(meta_path.read_text())
            codes = CodeMap(**meta["codes"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(f"{meta_path}: not a valid pipeline description ({e})") from e
        ae_name = meta.get("autoencoder")
        if ae_name not in AUTOENCODERS:
            _register_known()
        if ae_name not in AUTOENCODERS:
            raise InputError(
                f"{meta_path}: autoencoder {ae_name!r} is not a known class "
                f"({', '.join(sorted(AUTOENCODERS)) or 'none registered'})"
            )
        sched_cls = getattr(diffusers, meta.get("scheduler_class", "DDIMScheduler"), None)
        if sched_cls is None or not meta.get("scheduler_class", "").endswith("Scheduler"):
            raise InputError(f"{meta_path}: unknown scheduler {meta.get('scheduler_class')!r}")
        unet = diffusers.UNet2DModel.from_pretrained(str(d / "unet")).to(map_location).eval()
        scheduler = sched_cls.from_pretrained(str(d / "scheduler"))
        autoencoder = AUTOENCODERS[ae_name].from_pretrained(  # type: ignore[attr-defined]
            d / "autoencoder", map_location=map_location
        )
        return cls(unet, scheduler, autoencoder, codes)


def _register_known() -> None:
    """Register knnlab's own autoencoders (BRIGHT and the VQ/RQ/KL baselines)."""
    from knnlab.bright.autoencoder import BrightAutoencoder
    from knnlab.bright.baselines import BaselineAutoencoder

    for cls in (BrightAutoencoder, BaselineAutoencoder):
        AUTOENCODERS.setdefault(cls.__name__, cls)
