"""Generators as the hubness experiment sees them: ``z -> images`` in ``[0, 1]``, optionally split
into a mapping ``z -> w`` and a synthesis ``w -> images``.

:func:`as_generator` wraps any ``nn.Module`` or callable; :func:`load_generator` resolves a spec:

* ``"builtin"`` — the shipped MNIST GAN (:func:`knnlab.hubness.gan.builtin_generator`);
* ``"celeba64"`` — the shipped 64x64 CelebA face GAN (:func:`knnlab.hubness.gan.celeba64_generator`);
* a folder written by ``Generator.save_pretrained`` (``config.json`` + ``model.safetensors``);
* ``"package.module:attribute"`` — an importable generator object, or a factory (function or class)
  called with no arguments that returns one; it may expose ``mapping``/``synthesis`` and
  ``latent_dim`` / ``z_dim`` (else pass ``latent_dim``);
* a StyleGAN2-ADA / StyleGAN3 network pickle (``*.pkl``, its ``G_ema``) — **only with
  ``trust_pickle=True``** (CLI: ``--trust-pickle``). Unpickling executes arbitrary code stored in the
  file (those pickles even embed their own Python source), so a malicious ``.pkl`` can do anything the
  user can. Load only pickles from a source you trust; knnlab never unpickles anything by default.
  Loading them also needs NVIDIA's ``dnnlib`` and ``torch_utils`` packages on ``sys.path`` (e.g. run
  from a checkout of stylegan2-ada-pytorch or stylegan3).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knnlab.errors import DataNotFoundError, InputError

__all__ = ["GeneratorAdapter", "as_generator", "load_generator"]

log = logging.getLogger(__name__)

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class GeneratorAdapter:
    """A generator with a uniform interface.

    ``latent_dim``: size of z; ``generate(z (B, latent_dim)) -> images (B, C, H, W)`` in ``[0, 1]``;
    ``mapping(z) -> w`` and ``synthesis(w) -> images in [0, 1]`` when the generator has a W space
    (``has_w``); ``w_avg`` the generator's own mean w if it keeps one (else ``None``).
    ``output_range`` is the raw output range that ``generate``/``synthesis`` rescale to ``[0, 1]``.
    """

    latent_dim: int
    raw_generate: Fn
    raw_mapping: Fn | None = None
    raw_synthesis: Fn | None = None
    output_range: tuple[float, float] = (-1.0, 1.0)
    w_avg: torch.Tensor | None = None
    name: str = "generator"
    module: nn.Module | None = None

    @property
    def has_w(self) -> bool:
        return self.raw_mapping is not None and self.raw_synthesis is not None

    @property
    def device(self) -> torch.device:
        if self.module is not None:
            for p in self.module.parameters():
                return p.device
        return torch.device("cpu")

    def _to_unit(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.output_range
        return ((x.float() - lo) / (hi - lo)).clamp(0.0, 1.0)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] for latents ``z (B, latent_dim)``, in batches."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InputError(f"z has shape {tuple(z.shape)}; expected (B, {self.latent_dim})")
        dev = self.device
        outs = [
            self._to_unit(self.raw_generate(z[i : i + batch_size].to(dev))).cpu()
            for i in range(0, len(z), batch_size)
        ]
        return torch.cat(outs) if outs else torch.zeros(0)

    @torch.no_grad()
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        if self.raw_mapping is None:
            raise InputError(f"{self.name} has no mapping network (no W space); use space='z'")
        return self.raw_mapping(z.to(self.device))

    @torch.no_grad()
    def synthesis(self, w: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Images in [0, 1] for intermediate latents ``w``, in batches."""
        if self.raw_synthesis is None:
            raise InputError(f"{self.name} has no synthesis network (no W space); use space='z'")
        dev = self.device
        outs = [
            self._to_unit(self.raw_synthesis(w[i : i + batch_size].to(dev))).cpu()
            for i in range(0, len(w), batch_size)
        ]
        return torch.cat(outs) if outs else torch.zeros(0)

    def decode(self, latents: torch.Tensor, space: str, batch_size: int = 512) -> torch.Tensor:
        """Images for latents of ``space`` ("z" or "w")."""
        if space == "z":
            return self.generate(latents, batch_size)
        if space == "w":
            return self.synthesis(latents, batch_size)
        raise InputError(f"space={space!r}; choose 'z' or 'w'")


def _latent_dim_of(obj: Any) -> int | None:
    for attr in ("latent_dim", "z_dim", "nz", "latent_size"):
        v = getattr(obj, attr, None)
        if isinstance(v, int):
            return v
    cfg = getattr(obj, "config", None)
    v = getattr(cfg, "latent_dim", None)
    return v if isinstance(v, int) else None


def _is_stylegan(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("mapping", "synthesis", "z_dim", "c_dim", "num_ws"))


def _stylegan_adapter(G: Any, name: str) -> GeneratorAdapter:
    """StyleGAN2-ADA / StyleGAN3 ``G_ema``: W is the per-layer-shared w ``(B, w_dim)`` broadcast to
    ``num_ws`` layers; unconditional (c = 0) or class 0 for conditional models."""
    num_ws, c_dim = int(G.num_ws), int(G.c_dim)

    def c_of(z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[0], c_dim, device=z.device)

    def mapping(z: torch.Tensor) -> torch.Tensor:
        return G.mapping(z, c_of(z))[:, 0]

    def synthesis(w: torch.Tensor) -> torch.Tensor:
        return G.synthesis(w.unsqueeze(1).repeat(1, num_ws, 1), noise_mode="const")

    def generate(z: torch.Tensor) -> torch.Tensor:
        return synthesis(mapping(z))

    w_avg = getattr(G.mapping, "w_avg", None)
    return GeneratorAdapter(
        latent_dim=int(G.z_dim),
        raw_generate=generate,
        raw_mapping=mapping,
        raw_synthesis=synthesis,
        output_range=(-1.0, 1.0),
        w_avg=w_avg.detach().clone() if isinstance(w_avg, torch.Tensor) else None,
        name=name,
        module=G if isinstance(G, nn.Module) else None,
    )


def as_generator(
    obj: Any,
    *,
    latent_dim: int | None = None,
    output_range: tuple[float, float] | None = None,
    name: str | None = None,
) -> GeneratorAdapter:
    """Wrap a generator: a :class:`GeneratorAdapter` (returned as is), a StyleGAN2/3 ``G``, an
    ``nn.Module`` or callable ``z -> images`` (with ``mapping`` and ``synthesis`` attributes if it has
    a W space). ``latent_dim`` is read from ``latent_dim``/``z_dim`` attributes when not given;
    ``output_range`` from an ``output_range`` attribute, else ``(-1, 1)``."""
    if isinstance(obj, GeneratorAdapter):
        return obj
    label = name or type(obj).__name__
    if _is_stylegan(obj):
        return _stylegan_adapter(obj, label)
    if not callable(obj):
        raise InputError(f"{label}: a generator must be an nn.Module or a callable z -> images")
    dim = latent_dim if latent_dim is not None else _latent_dim_of(obj)
    if dim is None:
        raise InputError(
            f"{label}: cannot tell its latent size; give it a `latent_dim` attribute or pass "
            "latent_dim=..."
        )
    rng = output_range or tuple(getattr(obj, "output_range", (-1.0, 1.0)))
    mapping = getattr(obj, "mapping", None)
    synthesis = getattr(obj, "synthesis", None)
    split = callable(mapping) and callable(synthesis)
    w_avg = getattr(obj, "w_avg", None)
    if isinstance(obj, nn.Module):
        obj.eval()
    return GeneratorAdapter(
        latent_dim=int(dim),
        raw_generate=obj,
        raw_mapping=mapping if split else None,
        raw_synthesis=synthesis if split else None,
        output_range=(float(rng[0]), float(rng[1])),
        w_avg=w_avg.detach().clone() if split and isinstance(w_avg, torch.Tensor) else None,
        name=label,
        module=obj if isinstance(obj, nn.Module) else None,
    )


def _load_pickle(path: Path, trust_pickle: bool) -> Any:
    if not trust_pickle:
        raise InputError(
            f"{path}: refusing to unpickle a network pickle. Unpickling runs arbitrary code stored in "
            "the file; if you trust its source, pass trust_pickle=True (CLI: --trust-pickle)"
        )
    import pickle

    log.warning("unpickling %s (trusted by the caller): this runs code stored in the file", path)
    with open(path, "rb") as f:
        try:
            data = pickle.load(f)  # the caller explicitly trusted this file
        except ModuleNotFoundError as e:
            raise DataNotFoundError(
                f"{path}: the pickle needs module {e.name!r}; StyleGAN2-ADA / StyleGAN3 pickles need "
                "NVIDIA's dnnlib and torch_utils on sys.path (run from their repository checkout)"
            ) from e
    if isinstance(data, dict):
        for key in ("G_ema", "G"):
            if key in data:
                return data[key]
        raise InputError(f"{path}: the pickle holds a dict without 'G_ema' or 'G' ({sorted(data)})")
    return data


def _import_attr(spec: str) -> Any:
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise InputError(f"generator {spec!r}: expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as e:
        raise InputError(f"generator {spec!r}: cannot import module {mod_name!r} ({e})") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"generator {spec!r}: {mod_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and not isinstance(obj, nn.Module):
        obj = obj()  # a factory
    return obj


def load_generator(
    spec: str | Path | Any = "builtin",
    *,
    trust_pickle: bool = False,
    device: str | torch.device = "cpu",
    latent_dim: int | None = None,
) -> GeneratorAdapter:
    """Resolve ``spec`` (see the module docstring) to a :class:`GeneratorAdapter` on ``device``."""
    from knnlab.hubness.gan import Generator, builtin_generator, celeba64_generator

    if not isinstance(spec, str | Path):
        obj, label = spec, type(spec).__name__
    elif str(spec) == "builtin":
        obj, label = builtin_generator(device), "builtin MNIST GAN"
    elif str(spec) == "celeba64":
        obj, label = celeba64_generator(device), "built-in CelebA 64x64 GAN"
    else:
        s = str(spec)
        path = Path(s).expanduser()
        if path.is_dir():
            obj, label = Generator.from_pretrained(path, map_location=device), str(path)
        elif path.suffix == ".pkl":
            if not path.is_file():
                raise DataNotFoundError(f"generator pickle {path} not found")
            obj, label = _load_pickle(path, trust_pickle), str(path)
        elif ":" in s and not path.exists():
            obj, label = _import_attr(s), s
        else:
            raise InputError(
                f"generator {s!r}: not 'builtin', 'celeba64', a folder with config.json + model.safetensors, a "
                "'module:attribute' path, or a StyleGAN .pkl (with --trust-pickle)"
            )
    if isinstance(obj, nn.Module):
        obj = obj.to(device).eval()
    return as_generator(obj, latent_dim=latent_dim, name=label)
