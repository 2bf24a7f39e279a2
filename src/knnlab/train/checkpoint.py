"""Checkpoints: tensors as safetensors, everything else as JSON, written so a kill never corrupts one.

Layout under ``root`` (usually ``out_dir/checkpoints``)::

    step_0000500/           one folder per checkpoint
        model.safetensors   one file per saved object (module, optimiser, EMA...)
        optimizer.safetensors
        state.json          step, the objects' non-tensor state, the caller's extra state
    latest                  text file naming the newest complete folder, written last

A checkpoint is built in a hidden temp folder, renamed into place when complete, and only then is
``latest`` rewritten (atomically). A folder that a kill interrupted is never named by ``latest``,
so :meth:`CheckpointManager.load` ignores it; the next save or prune removes it.

Non-tensor structure (the optimiser's param_groups, python scalars, tuples, int dict keys) is kept
exactly: it is stored as JSON with small tags (``__tensor__``, ``__tuple__``, ``__items__``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load as st_load
from safetensors.torch import load_file
from safetensors.torch import save as st_save
from torch import nn

from knnlab.errors import DataNotFoundError
from knnlab.io_utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from knnlab.train.distributed import unwrap

__all__ = [
    "CheckpointManager",
    "Stateful",
    "load_weights",
    "pack_state",
    "save_weights",
    "unpack_state",
]

FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^step_(\d{7,})$")


class Stateful(Protocol):
    """Anything with ``state_dict()`` / ``load_state_dict()`` (modules, optimisers, EMA, ...)."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


# --------------------------------------------------------------------------- state (de)serialisation


def pack_state(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, tensors, scalars) into (JSON skeleton, tensors).

    Tensors are replaced by ``{"__tensor__": key}`` and returned in a flat dict, copied to CPU and
    made contiguous (safetensors needs that, and it also unties shared storage).
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            key = path or "tensor"
            tensors[key] = x.detach().to("cpu", copy=True).contiguous()
            return {"__tensor__": key}
        if isinstance(x, Mapping):
            plain = all(isinstance(k, str) and not k.startswith("__") for k in x)
            if plain:
                return {k: walk(v, f"{path}.{k}" if path else k) for k, v in x.items()}
            return {
                "__items__": [[k, walk(v, f"{path}.{k}" if path else str(k))] for k, v in x.items()]
            }
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
        if x is None or isinstance(x, bool | int | float | str):
            return x
        raise TypeError(f"cannot checkpoint a {type(x).__name__} at {path!r}")

    return walk(obj, prefix), tensors


def unpack_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(unpack_state(v, tensors) for v in skeleton["__tuple__"])
        if "__items__" in skeleton:
            return {_key(k): unpack_state(v, tensors) for k, v in skeleton["__items__"]}
        return {k: unpack_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unpack_state(v, tensors) for v in skeleton]
    return skeleton


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def _kind(obj: Any) -> str:
    if isinstance(obj, nn.Module):
        return "module"
    if isinstance(obj, torch.optim.Optimizer):
        return "optimizer"
    return type(obj).__name__


# --------------------------------------------------------------------------- final weights


def save_weights(module: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``module``'s state dict to a ``.safetensors`` file atomically."""
    _, tensors = pack_state(unwrap(module).state_dict())
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_weights(module: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Load a ``.safetensors`` state dict (as written by :func:`save_weights`) into ``module``."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"weights file {path} does not exist")
    unwrap(module).load_state_dict(load_file(str(path), device="cpu"), strict=strict)
    return module


# --------------------------------------------------------------------------- the manager


class CheckpointManager:
    """Save and restore named objects (modules, optimisers, EMA, ...) plus JSON-able extra state.

    >>> ckpt = CheckpointManager(out_dir / "checkpoints", keep=3)
    >>> ckpt.save(step, {"G": gen, "D": disc, "opt_G": opt_g, "opt_D": opt_d}, extra={"epoch": 3})
    >>> extra = ckpt.load({"G": gen, "D": disc, "opt_G": opt_g, "opt_D": opt_d})  # None if none

    Only one process should call :meth:`save` (rank 0 under DDP; the Trainer puts barriers around
    it); every process may call :meth:`load`.
    """

    POINTER = "latest"

    def __init__(self, root: str | os.PathLike, keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = max(int(keep), 1)

    # ---- paths
    @staticmethod
    def folder_name(step: int) -> str:
        return f"step_{step:07d}"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders (with a state.json), oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.iterdir():
            m = _STEP_RE.match(p.name)
            if m and p.is_dir() and (p / "state.json").is_file():
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The folder ``latest`` names, if it is complete; else the newest complete folder when the
        pointer is missing; else None. A folder newer than the pointer (an interrupted save) is
        never returned."""
        pointer = self.root / self.POINTER
        if pointer.is_file():
            name = pointer.read_text(encoding="utf-8").strip()
            target = self.root / name
            m = _STEP_RE.match(name)
            if m and (target / "state.json").is_file():
                return target
            limit = int(m.group(1)) if m else -1
            older = [p for p in self.checkpoints() if _step_of(p) < limit]
            return older[-1] if older else None
        done = self.checkpoints()
        return done[-1] if done else None

    # ---- save
    def save(
        self, step: int, objects: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> Path:
        """Write checkpoint ``step_{step}`` with every object's state and ``extra``; returns its path.

        ``objects`` maps a file stem to a module / optimiser / anything with ``state_dict()``
        (optional ``extra_state()`` for non-tensor state, as :class:`~knnlab.train.EMA` has).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / self.folder_name(step)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=self.root))
        try:
            index: dict[str, Any] = {}
            for name, obj in objects.items():
                _check_name(name)
                target: Any = unwrap(obj) if isinstance(obj, nn.Module) else obj
                skeleton, tensors = pack_state(target.state_dict())
                atomic_write_bytes(tmp / f"{name}.safetensors", st_save(tensors))
                entry = {"kind": _kind(obj), "file": f"{name}.safetensors", "state": skeleton}
                if hasattr(target, "extra_state"):
                    entry["extra_state"] = target.extra_state()
                index[name] = entry
            state = {
                "format": FORMAT_VERSION,
                "step": int(step),
                "objects": index,
                "extra": dict(extra or {}),
            }
            atomic_write_json(tmp / "state.json", state)  # last file: marks the folder complete
            if final.exists():  # a leftover from a run that was killed before its pointer update
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_text(self.root / self.POINTER, final.name + "\n")
        self.prune()
        return final

    def prune(self) -> None:
        """Keep the ``keep`` newest complete checkpoints up to ``latest``; remove the rest and any
        interrupted (partial or newer-than-latest) folders."""
        current = self.latest()
        if current is None:
            return
        for p in self.root.iterdir():
            if p.is_dir() and p.name.endswith(".partial") and p.name.startswith(".step_"):
                shutil.rmtree(p, ignore_errors=True)
        steps = []
        for p in self.root.iterdir():
            m = _STEP_RE.match(p.name)
            if m and p.is_dir():
                steps.append((int(m.group(1)), p))
        cur_step = _step_of(current)
        kept = [p for s, p in sorted(steps) if s <= cur_step and (p / "state.json").is_file()]
        kept = kept[-self.keep :]
        for _, p in steps:
            if p not in kept:
                shutil.rmtree(p, ignore_errors=True)

    # ---- load
    def read_state(self, path: str | os.PathLike | None = None) -> dict[str, Any] | None:
        """The ``state.json`` of ``path`` (default: :meth:`latest`), or None when there is none."""
        folder = Path(path) if path is not None else self.latest()
        if folder is None:
            return None
        return json.loads((folder / "state.json").read_text(encoding="utf-8"))

    def load(
        self,
        objects: Mapping[str, Any],
        path: str | os.PathLike | None = None,
        strict: bool = True,
    ) -> dict[str, Any] | None:
        """Restore ``objects`` from checkpoint ``path`` (default: the latest complete one).

        Returns the saved state dict (``step``, ``extra``...) or None when there is no checkpoint.
        Every name in ``objects`` must be in the checkpoint (``strict`` also applies to modules).
        """
        folder = Path(path) if path is not None else self.latest()
        if folder is None:
            return None
        state = self.read_state(folder)
        assert state is not None
        saved = state["objects"]
        missing = [n for n in objects if n not in saved]
        if missing:
            raise DataNotFoundError(
                f"checkpoint {folder} has no {', '.join(missing)} (it has {', '.join(saved)})"
            )
        for name, obj in objects.items():
            entry = saved[name]
            data = (folder / entry["file"]).read_bytes()
            sd = unpack_state(entry["state"], st_load(data))
            target: Any = unwrap(obj) if isinstance(obj, nn.Module) else obj
            if isinstance(target, nn.Module):
                target.load_state_dict(sd, strict=strict)
            else:
                target.load_state_dict(sd)
            if "extra_state" in entry and hasattr(target, "load_extra_state"):
                target.load_extra_state(entry["extra_state"])
        return state


def _step_of(folder: Path) -> int:
    m = _STEP_RE.match(folder.name)
    return int(m.group(1)) if m else -1


def _check_name(name: str) -> None:
    if not name or name == "state" or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(
            f"checkpoint object name {name!r}: use letters, digits, _ . - (not 'state')"
        )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
