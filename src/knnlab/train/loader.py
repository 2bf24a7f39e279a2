"""The resumable sample order: each step's global batch is a function of (seed, step) only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from knnlab.errors import InputError
from knnlab.train import distributed as D
from knnlab.train.config import TrainConfig
from knnlab.train.rng import epoch_permutation

__all__ = ["StepBatchSampler", "make_loader", "to_device"]


class StepBatchSampler(Sampler[list[int]]):
    """This rank's indices for steps ``start .. stop-1``.

    Step ``s`` belongs to epoch ``s // batches_per_epoch``; its global batch is a slice of the
    epoch's permutation (:func:`~knnlab.train.rng.epoch_permutation`), and each rank takes a
    contiguous ``global_batch // world`` share. The incomplete last batch of an epoch is dropped.
    """

    def __init__(
        self,
        n: int,
        global_batch: int,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if global_batch % world:
            raise InputError(
                f"batch_size={global_batch} cannot be split evenly over {world} processes; "
                f"use a multiple of {world}"
            )
        if n < global_batch:
            raise InputError(
                f"the training set has {n} samples, fewer than batch_size={global_batch}"
            )
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.batches_per_epoch = n // global_batch

    def global_batch_at(self, step: int) -> list[int]:
        epoch, pos = divmod(step, self.batches_per_epoch)
        perm = epoch_permutation(self.n, self.seed, epoch)
        return perm[pos * self.global_batch : (pos + 1) * self.global_batch].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        cached_epoch, perm = -1, None
        for step in range(self.start, self.stop):
            epoch, pos = divmod(step, self.batches_per_epoch)
            if epoch != cached_epoch:
                cached_epoch, perm = epoch, epoch_permutation(self.n, self.seed, epoch)
            assert perm is not None
            batch = perm[pos * self.global_batch : (pos + 1) * self.global_batch].tolist()
            yield D.shard(batch, self.rank, self.world)

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


def make_loader(
    dataset: Dataset,
    cfg: TrainConfig,
    start_step: int = 0,
    *,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    device: torch.device | None = None,
) -> DataLoader:
    """A DataLoader that yields this rank's batch for steps ``start_step .. cfg.steps - 1``.

    The batches depend only on ``(cfg.seed, cfg.batch_size, len(dataset), step)`` (see
    :class:`StepBatchSampler`), so a loop resumed at step ``s`` sees exactly the batches an
    uninterrupted one would. Both loops use it; hand-written loops can too.
    """
    sampler = StepBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        cfg.batch_size,
        cfg.seed,
        start_step,
        cfg.steps,
        D.rank(),
        D.world_size(),
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.num_workers,
        collate_fn=collate_fn,
        pin_memory=device is not None and device.type == "cuda",
        # a private generator, so creating the loader never draws from the global RNG
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch
