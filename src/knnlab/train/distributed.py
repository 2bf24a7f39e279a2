"""Helpers for running unchanged under ``torchrun --nproc_per_node N``.

Without torchrun (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) every helper is a cheap
no-op: ``rank() == 0``, ``world_size() == 1``, ``barrier()`` returns at once.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "all_reduce_mean",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "rank",
    "shard",
    "unwrap",
    "world_size",
]


def is_distributed() -> bool:
    """True when a process group with more than one process is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK`` from torchrun; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Rank 0: the process that writes checkpoints and logs and shows progress."""
    return rank() == 0


def init_distributed(backend: str | None = None) -> bool:
    """Start the process group from torchrun's environment when ``WORLD_SIZE > 1``.

    Backend: ``nccl`` when CUDA is available, else ``gloo`` (or ``backend``). On CUDA the process is
    bound to ``cuda:LOCAL_RANK``. The group stays up (so ``rank()`` keeps working after training)
    until :func:`cleanup_distributed` or the end of the process. Returns True if this call started
    it; False if it was already up or not needed.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if dist.is_initialized():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    atexit.register(_destroy_at_exit)
    return True


def _destroy_at_exit() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cleanup_distributed() -> None:
    """Tear the process group down (after a final barrier) if it is up."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over ranks (a new tensor; ``t`` itself is unchanged)."""
    if not is_distributed():
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / world_size()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shard(indices: list[int], rank_: int | None = None, world: int | None = None) -> list[int]:
    """This rank's contiguous share of a global batch (``len(indices)`` divisible by world)."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    if len(indices) % w:
        raise ValueError(f"a batch of {len(indices)} cannot be split evenly over {w} ranks")
    per = len(indices) // w
    return indices[r * per : (r + 1) * per]


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel / DataParallel wrapper."""
    while isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    return model
