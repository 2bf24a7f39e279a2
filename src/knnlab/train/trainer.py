"""The single-model training loop: ``Trainer(model, cfg, loss_fn, train_data).fit(resume=True)``.

The loop, step by step (``Trainer.fit``):

1. start the process group when run under torchrun; place the model; wrap it in DDP;
2. restore the latest checkpoint (``resume=True``) or seed the RNGs (``cfg.seed + rank``);
3. for each step: take this rank's share of the step's global batch (the order is a function of
   ``(seed, epoch)`` only, so a resumed run sees the same batches), set the scheduled lr, run
   ``loss_fn(model, batch) -> (loss, logs)``, backward, clip, optimiser step, EMA update;
4. every ``log_every`` steps write the mean losses (averaged over ranks) to ``log.jsonl``;
   every ``eval_every`` steps call ``eval_fn`` on the EMA (or the model); every
   ``checkpoint_every`` steps write a checkpoint;
5. at the end write ``model.safetensors`` (and ``model_ema.safetensors``) into ``out_dir``.

Resuming (``fit(resume=True)``) restores model, optimiser, EMA, step and every rank's RNG states, and
the sample order depends only on the step, so on CPU a killed-and-resumed run ends bitwise equal to
an uninterrupted one (tested with SIGKILL). On GPU the same holds up to non-deterministic kernels
(set ``torch.use_deterministic_algorithms(True)`` for bitwise). The one visible difference: the
first log line after a resume averages only the steps run since the checkpoint.
Under DDP each rank computes the same global batch's share, so N processes match 1 process up to
float summation order (tested to 1e-5 with 2 gloo processes).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from knnlab.devices import resolve_device
from knnlab.errors import InputError, KnnlabError
from knnlab.io_utils import atomic_write_json
from knnlab.progress import progress
from knnlab.train import distributed as D
from knnlab.train.checkpoint import CheckpointManager, save_weights
from knnlab.train.config import TrainConfig
from knnlab.train.ema import EMA
from knnlab.train.logger import JSONLLogger, TensorBoardLogger
from knnlab.train.rng import epoch_permutation, get_rng_state, seed_everything, set_rng_state
from knnlab.train.schedule import lr_at, make_optimizer, set_lr

__all__ = [
    "EvalFn",
    "LossFn",
    "StepBatchSampler",
    "TrainResult",
    "Trainer",
    "fit",
    "make_loader",
    "to_device",
]

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, Any]]]
EvalFn = Callable[[nn.Module], dict[str, float]]
Callback = Callable[["Trainer", int, dict[str, Any]], None]


# --------------------------------------------------------------------------- data order


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
    uninterrupted one would. Loops with several models (a GAN) use it directly.
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


# --------------------------------------------------------------------------- result


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns (rank 0 has the paths; other ranks get them too)."""

    step: int  # steps completed
    out_dir: Path
    model_path: Path  # out_dir / model.safetensors
    ema_path: Path | None  # out_dir / model_ema.safetensors when EMA is on
    last_log: dict[str, Any] = field(default_factory=dict)  # the last training log record
    evals: list[dict[str, Any]] = field(default_factory=list)  # every evaluation of this call


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """Train one model with one optimiser. See the module docstring for the loop.

    Args:
        model: the module to train (moved to ``cfg.device``; wrapped in DDP under torchrun).
        cfg: the :class:`TrainConfig`.
        loss_fn: ``loss_fn(model, batch) -> (loss, logs)``; ``logs`` maps names to scalars
            (floats or 0-d tensors) that are averaged and logged alongside ``loss``.
        train_data: a map-style Dataset whose item ``i`` depends only on ``i`` (and its own seed).
        eval_fn: ``eval_fn(model) -> {metric: value}``, called on rank 0 in eval mode under
            ``torch.no_grad`` with the EMA module when EMA is on (else the plain model).
        callbacks: ``cb(trainer, step, logs)`` after every step (``step`` = steps completed).
        optimizer: an optimiser over ``model``'s parameters (default: ``make_optimizer``).
        collate_fn: the DataLoader's collate function (default: torch's).
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        loss_fn: LossFn,
        train_data: Dataset,
        eval_fn: EvalFn | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        optimizer: torch.optim.Optimizer | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if not hasattr(train_data, "__len__") or not hasattr(train_data, "__getitem__"):
            raise InputError(
                "train_data must be a map-style Dataset (with __len__ and __getitem__)"
            )
        if cfg.accum_steps != 1 or cfg.precision != "fp32":
            raise InputError(
                f"Trainer: accum_steps={cfg.accum_steps}, precision={cfg.precision!r}; the "
                "single-model Trainer runs accum_steps=1 in fp32 (use MultiTrainer for more)"
            )
        self.cfg = cfg
        self.loss_fn = loss_fn
        self.eval_fn = eval_fn
        self.train_data = train_data
        self.callbacks = list(callbacks)
        self.collate_fn = collate_fn
        self.out_dir = Path(cfg.out_dir)

        # a no-op outside torchrun; the group stays up until the process exits
        D.init_distributed("nccl" if resolve_device(cfg.device).type == "cuda" else "gloo")
        self.rank, self.world = D.rank(), D.world_size()
        self.device = self._pick_device(cfg.device)

        self.model = D.unwrap(model).to(self.device)
        self.optimizer = optimizer or make_optimizer(self.model.parameters(), cfg)
        self.ddp_model: nn.Module = self.model
        if D.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=cfg.ddp_find_unused_parameters
            )
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay is not None else None
        self.checkpoints = CheckpointManager(self.out_dir / "checkpoints", cfg.keep_checkpoints)

        self.step = 0  # optimisation steps completed
        self.elapsed = 0.0  # training wall-clock seconds, summed over resumed runs
        self.evals: list[dict[str, Any]] = []
        self.last_log: dict[str, Any] = {}
        self._jsonl: JSONLLogger | None = None
        self._tb: TensorBoardLogger | None = None

    # ---- setup helpers
    def _pick_device(self, name: str) -> torch.device:
        device = resolve_device(name)
        if device.type == "cuda" and D.is_distributed():
            device = torch.device("cuda", D.local_rank())
        return device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def stateful_objects(self) -> dict[str, Any]:
        """What a checkpoint holds: ``model``, ``optimizer`` and ``ema`` (when on)."""
        objs: dict[str, Any] = {"model": self.model, "optimizer": self.optimizer}
        if self.ema is not None:
            objs["ema"] = self.ema
        return objs

    @property
    def _bpe(self) -> int:  # batches per epoch
        return max(len(self.train_data) // self.cfg.batch_size, 1)  # type: ignore[arg-type]

    @property
    def epoch(self) -> int:
        """The epoch the next step belongs to."""
        return self.step // self._bpe

    # ---- checkpoints
    def save_checkpoint(self) -> None:
        """Write a checkpoint of the current step (collective: every rank must call it)."""
        rng_all: list[Any] = [get_rng_state()]
        if D.is_distributed():
            rng_all = [None] * self.world
            dist.all_gather_object(rng_all, get_rng_state())
        D.barrier()
        if self.is_main:
            extra = {
                "step": self.step,
                "epoch": self.epoch,
                "elapsed": self.elapsed,
                "world_size": self.world,
                "scheduler": {"step": self.step, "lr": lr_at(self.step, self.cfg)},
                "rng": rng_all,
                "config": self.cfg.to_dict(),
            }
            self.checkpoints.save(self.step, self.stateful_objects(), extra)
        D.barrier()

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        """Restore the latest complete checkpoint (or ``path``); False when there is none."""
        state = self.checkpoints.load(self.stateful_objects(), path=path)
        if state is None:
            return False
        extra = state["extra"]
        self.step = int(extra["step"])
        self.elapsed = float(extra.get("elapsed", 0.0))
        self._warn_config_change(extra.get("config", {}))
        rng = extra.get("rng") or []
        if len(rng) == self.world:
            set_rng_state(rng[self.rank])
        else:  # a different number of processes: reseed deterministically instead
            seed_everything(self.cfg.seed + self.rank + 1_000_003 * self.step)
        return True

    def _warn_config_change(self, saved: dict[str, Any]) -> None:
        now = self.cfg.to_dict()
        changed = [
            k
            for k in ("seed", "batch_size", "lr", "schedule", "optimizer")
            if k in saved and saved[k] != now[k]
        ]
        if changed:
            warnings.warn(
                f"resuming with a changed config ({', '.join(changed)}); "
                "the run will not match an uninterrupted one",
                stacklevel=3,
            )

    # ---- one step
    def train_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimisation step on this rank's batch; returns detached (loss, logs)."""
        set_lr(self.optimizer, lr_at(self.step, self.cfg))
        self.optimizer.zero_grad(set_to_none=True)
        loss, logs = self.loss_fn(self.ddp_model, to_device(batch, self.device))
        loss.backward()
        out = {"loss": self._scalar(loss)}
        out.update({k: self._scalar(v) for k, v in logs.items()})
        if self.cfg.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            out["grad_norm"] = self._scalar(norm)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return loss.detach(), out

    def _scalar(self, v: Any) -> torch.Tensor:
        # kept on the device (no sync per step); reduced and read only when a log line is due
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        if isinstance(v, torch.Tensor):
            return v.detach().to(self.device, dtype).reshape(())
        return torch.tensor(float(v), dtype=dtype, device=self.device)

    # ---- evaluation
    def evaluate(self) -> dict[str, Any]:
        """Run ``eval_fn`` on rank 0 (EMA module when on); returns and logs the metrics."""
        metrics: dict[str, Any] = {}
        if self.eval_fn is not None and self.is_main:
            target = self.ema.module if self.ema is not None else self.model
            was_training = target.training
            target.eval()
            with torch.no_grad():
                metrics = dict(self.eval_fn(target))
            target.train(was_training)
        D.barrier()
        return metrics

    # ---- the loop
    def _loader(self) -> DataLoader:
        return make_loader(
            self.train_data, self.cfg, self.step, collate_fn=self.collate_fn, device=self.device
        )

    def fit(self, resume: bool | str | Path = False) -> TrainResult:
        """Train until ``cfg.steps``; ``resume=True`` continues from the latest checkpoint
        (starting fresh when there is none), a path resumes from that checkpoint folder."""
        cfg = self.cfg
        resumed = False
        if resume:
            resumed = self.load_checkpoint(None if resume is True else Path(resume))
        if not resumed:
            self.step, self.elapsed = 0, 0.0
            seed_everything(cfg.seed + self.rank)
        self.model.train()
        already_done = self.step >= cfg.steps  # resumed from the final checkpoint: nothing to do
        self._jsonl, self._tb = self._open_logs(resumed)
        try:
            self._run()
            self._finish(evaluate=not already_done)
        finally:
            if self._jsonl is not None:
                self._jsonl.close()
            if self._tb is not None:
                self._tb.close()
            self._jsonl, self._tb = None, None
        ema_path = self.out_dir / "model_ema.safetensors" if self.ema is not None else None
        return TrainResult(
            self.step, self.out_dir, self.out_dir / "model.safetensors", ema_path,
            self.last_log, self.evals,
        )  # fmt: skip

    def _open_logs(self, resumed: bool) -> tuple[JSONLLogger | None, TensorBoardLogger | None]:
        if not self.is_main:
            return None, None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out_dir / "config.json", self.cfg.to_dict())
        jsonl = JSONLLogger(self.out_dir / "log.jsonl", resume_step=self.step if resumed else None)
        tb = TensorBoardLogger(self.out_dir / "tb") if self.cfg.tensorboard else None
        return jsonl, tb

    def _run(self) -> None:
        cfg = self.cfg
        sums: dict[str, torch.Tensor] = {}
        count = 0
        t_last = time.perf_counter()
        steps: Any = range(self.step, cfg.steps)
        if self.is_main:
            steps = progress(steps, desc="train", total=cfg.steps, initial=self.step)
        for _, batch in zip(steps, self._loader()):
            _loss, logs = self.train_step(batch)
            _accumulate(sums, logs)
            count += 1
            now = time.perf_counter()
            self.elapsed += now - t_last
            t_last = now
            record: dict[str, Any] = {}
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                record = self._log_train(sums, count)
                sums, count = {}, 0
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                self._log_eval()
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            for cb in self.callbacks:
                cb(self, self.step, record)
            t_last = time.perf_counter()  # time spent logging/saving is not training time

    def _log_train(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, Any]:
        names = sorted(sums)
        means = torch.stack([sums[k] / count for k in names]).to(self._reduce_device())
        means = D.all_reduce_mean(means).cpu()
        record: dict[str, Any] = {"step": self.step, "epoch": round(self.step / self._bpe, 4)}
        record.update({k: float(v) for k, v in zip(names, means.tolist())})
        record["lr"] = lr_at(self.step - 1, self.cfg)
        record["time"] = round(self.elapsed, 4)
        if not math.isfinite(record["loss"]):
            raise KnnlabError(
                f"the training loss became {record['loss']} at step {self.step}; "
                "lower lr, set grad_clip, or check the data for NaN/Inf"
            )
        self.last_log = record
        self._write_log(record)
        return record

    def _log_eval(self) -> None:
        metrics = self.evaluate()
        if not self.is_main or not metrics:
            return
        record = {"step": self.step, **{f"eval/{k}": v for k, v in metrics.items()}}
        record["time"] = round(self.elapsed, 4)
        self.evals.append(record)
        self._write_log(record)

    def _write_log(self, record: dict[str, Any]) -> None:
        if self._jsonl is not None:
            self._jsonl.log(record)
        if self._tb is not None:
            self._tb.log(record, self.step)

    def _reduce_device(self) -> torch.device:
        # nccl reduces CUDA tensors only; gloo reduces CPU tensors
        return (
            self.device
            if D.is_distributed() and self.device.type == "cuda"
            else torch.device("cpu")
        )

    def _finish(self, evaluate: bool = True) -> None:
        """Final evaluation, the last checkpoint and the final weights."""
        cfg = self.cfg
        if self.eval_fn is not None and evaluate:
            self._log_eval()
        if not cfg.checkpoint_every or self.step % cfg.checkpoint_every:
            self.save_checkpoint()
        if self.is_main:
            meta = {"step": self.step, "seed": cfg.seed}
            save_weights(self.model, self.out_dir / "model.safetensors", meta)
            if self.ema is not None:
                save_weights(self.ema.module, self.out_dir / "model_ema.safetensors", meta)
        D.barrier()


def _accumulate(sums: dict[str, torch.Tensor], values: dict[str, torch.Tensor]) -> None:
    for k, v in values.items():
        sums[k] = sums[k] + v if k in sums else v.clone()


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    loss_fn: LossFn,
    train_data: Dataset,
    eval_fn: EvalFn | None = None,
    *,
    resume: bool | str | Path = False,
    callbacks: Sequence[Callback] = (),
    optimizer: torch.optim.Optimizer | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> TrainResult:
    """``Trainer(model, cfg, loss_fn, train_data, eval_fn, ...).fit(resume)`` in one call."""
    trainer = Trainer(
        model, cfg, loss_fn, train_data, eval_fn,
        callbacks=callbacks, optimizer=optimizer, collate_fn=collate_fn,
    )  # fmt: skip
    return trainer.fit(resume=resume)
