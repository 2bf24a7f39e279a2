"""One home for model weights: ``save_pretrained`` / ``from_pretrained`` (``config.json`` +
``model.safetensors``, as diffusers writes them), strict state-dict loading with one readable error,
and the SHA-256 of files.

Every model of knnlab that is saved and loaded (N³Net, DnCNN, the built-in GAN, feature networks,
BRIGHT autoencoders ...) goes through :class:`PretrainedMixin`::

    @dataclass
    class MyConfig:
        width: int = 64

    class MyNet(PretrainedMixin, nn.Module):
        config_class = MyConfig

        def __init__(self, config: MyConfig | None = None) -> None:
            super().__init__()
            self.config = config or MyConfig()
            ...

    net.save_pretrained("out/mynet")           # out/mynet/config.json + model.safetensors
    net = MyNet.from_pretrained("out/mynet")   # eval() mode
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from knnlab.errors import DataNotFoundError, InputError, KnnlabError
from knnlab.io_utils import atomic_write_bytes, atomic_write_text

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointMismatchError",
    "PretrainedMixin",
    "load_safetensors",
    "load_state_dict_strict",
    "read_config",
    "sha256_file",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CheckpointMismatchError(KnnlabError):
    """A checkpoint's parameters do not fit the model (missing, unexpected or mis-shaped keys)."""


class PretrainedMixin:
    """``save_pretrained(dir)`` / ``from_pretrained(dir)`` for a module built from one dataclass config.

    The subclass sets ``config_class`` and keeps its config in ``self.config``.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically each)."""
        from safetensors.torch import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()  # type: ignore[attr-defined]
        }
        config = {"model_type": type(self).__name__, **dataclasses.asdict(self.config)}
        atomic_write_bytes(directory / WEIGHTS_NAME, save(state, metadata={"format": "pt"}))
        atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, *, map_location: Any = "cpu"):
        """Rebuild a model saved with :meth:`save_pretrained`; returned in ``eval()`` mode."""
        directory = Path(name_or_dir)
        if not directory.is_dir():
            raise DataNotFoundError(
                f"{cls.__name__}.from_pretrained({str(name_or_dir)!r}): not a folder; pass a folder "
                f"written by save_pretrained (with {CONFIG_NAME} and {WEIGHTS_NAME})"
            )
        config = read_config(directory, cls.__name__, cls.config_class)
        model: Any = cls(config)  # type: ignore[call-arg]
        load_safetensors(model, directory / WEIGHTS_NAME, map_location=map_location)
        return model.eval()


def read_config(directory: Path, model_type: str | None, config_class: type) -> Any:
    """The dataclass config stored in ``directory/config.json`` (checks ``model_type`` when given)."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise DataNotFoundError(
            f"{path}: missing; is {directory} a folder written by save_pretrained?"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e
    found = raw.pop("model_type", None)
    if model_type is not None and found not in (None, model_type):
        raise InputError(f"{path}: holds a {found}, not a {model_type}; load it with {found}")
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise InputError(f"{path}: unknown {config_class.__name__} fields {unknown}")
    return config_class(**raw)


def load_safetensors(model: torch.nn.Module, path: Path, *, map_location: Any = "cpu") -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise DataNotFoundError(f"{path}: missing; is {path.parent} written by save_pretrained?")
    state = load_file(str(path), device=str(map_location))
    load_state_dict_strict(model, state, source=str(path))


def load_state_dict_strict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """``load_state_dict(strict=True)`` with one readable error listing every mismatch.

    ``num_batches_tracked`` buffers absent from old checkpoints (PyTorch < 0.4.1) are set to 0.
    """
    own = model.state_dict()
    state = dict(state)
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {_short(unexpected)}")
        if shapes:
            parts.append(f"wrong shapes {_short(shapes)}")
        raise CheckpointMismatchError(
            f"{source} does not fit {type(model).__name__}: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def _short(items: list[str], n: int = 8) -> str:
    return str(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
