"""Several models, several optimisers, one step: ``MultiTrainer(...).fit(resume=True)``.

A step runs a list of :class:`Phase` objects in order. Each phase names the optimiser it steps and a
loss function ``loss(models, batch, ctx) -> (loss, logs)`` written by the user; a phase with
``every=N`` runs only on steps ``s`` with ``s % N == 0`` and its loss is multiplied by ``N`` (lazy
regularisation, StyleGAN2 sec. 3.1). A GAN with lazy R1 is three phases::

    phases = [
        Phase("D", "D", d_loss),                  # softplus(D(G(z))) + softplus(-D(x))
        Phase("G", "G", g_loss),                  # softplus(-D(G(z)))
        Phase("D_r1", "D", r1_loss, every=16),    # gamma/2 ||grad D(x)||^2, x 16
    ]
    MultiTrainer({"G": G, "D": D}, {"G": opt_g, "D": opt_d}, phases, cfg, data,
                 emas={"G": EMA(G, 0.999, rampup=0.05)}).fit(resume=True)

One phase, step by step: the learning rate of every group is ``lr_at(step, cfg, optimizer's lr) *
group["lr_scale"]`` (per-module multipliers: :func:`lr_scaled_groups`); only the phase optimiser's
parameters require gradients; the rank's batch is split into ``cfg.accum_steps`` micro-batches,
each loss divided by ``accum_steps`` and back-propagated under autocast (``cfg.precision``, with a
GradScaler for fp16 on CUDA); under torchrun the gradients are averaged over ranks with one
all-reduce (as StyleGAN2-ADA does, instead of DDP wrappers, which do not mix with several phases
and double backward); then clipping (``cfg.grad_clip``) and the optimiser step. After all phases
the EMAs are updated and, under torchrun, every model's buffers are broadcast from rank 0.

Randomness inside a loss: ``ctx.randn(*shape)`` gives noise for this micro-batch's samples that
depends only on ``(cfg.seed, step, phase, draw number, position in the global batch)``, so N
processes draw what one process draws. The global RNGs are seeded with ``cfg.seed + rank`` and
restored on resume, as in :class:`~knnlab.train.Trainer`.

Guarantees (tested): a SIGKILLed and resumed run ends bitwise equal on CPU; ``torchrun
--nproc_per_node 2`` (gloo) equals one process up to float summation order for models without
batch statistics (BatchNorm normalises over each rank's share of the batch, as under DDP);
checkpoints are atomic (:class:`~knnlab.train.CheckpointManager`).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from knnlab.devices import resolve_device
from knnlab.errors import InputError, KnnlabError
from knnlab.io_utils import atomic_write_json
from knnlab.progress import progress
from knnlab.train import distributed as D
from knnlab.train.checkpoint import CheckpointManager, save_weights
from knnlab.train.config import TrainConfig
from knnlab.train.ema import EMA
from knnlab.train.loader import make_loader, to_device
from knnlab.train.logger import JSONLLogger, TensorBoardLogger
from knnlab.train.phases import (
    Models,
    Phase,
    StepContext,
    lr_scaled_groups,
    resolve_precision,
    split_batch,
)
from knnlab.train.rng import get_rng_state, seed_everything, set_rng_state
from knnlab.train.schedule import lr_at, set_lr

__all__ = [
    "MultiTrainResult",
    "MultiTrainer",
    "Phase",
    "StepContext",
    "fit_multi",
    "lr_scaled_groups",
    "resolve_precision",
    "split_batch",
]

MultiEvalFn = Callable[[dict[str, nn.Module]], dict[str, float]]
MultiCallback = Callable[["MultiTrainer", int, dict[str, Any]], None]


@dataclass
class MultiTrainResult:
    """What :meth:`MultiTrainer.fit` returns."""

    step: int
    out_dir: Path
    weights: dict[str, Path]  # model name -> out_dir/<name>.safetensors (and <name>_ema)
    last_log: dict[str, Any] = field(default_factory=dict)
    evals: list[dict[str, Any]] = field(default_factory=list)


class MultiTrainer:
    """Train several models with several optimisers; see the module docstring.

    Args:
        models: name -> module (names become checkpoint file stems: letters, digits, ``_.-``).
        optimizers: name -> optimiser over (some of) the models' parameters; the optimiser's
            ``defaults["lr"]`` is its base lr for the schedule ``cfg.schedule``.
        phases: the phases of one step, run in order.
        cfg: the :class:`TrainConfig` (steps, batch, schedule, seed, accum_steps, precision,
            grad_clip, logging, checkpoints, out_dir, device); ``lr``/``optimizer``/``ema_decay``
            are not used (the optimisers and ``emas`` are given).
        train_data: a map-style Dataset whose item ``i`` depends only on ``i``.
        emas: model name -> :class:`EMA` of that model (one per model at most).
        eval_fn: ``eval_fn({name: module}) -> metrics`` on rank 0, in eval mode under no_grad,
            with each model's EMA module where it has one.
        callbacks: ``cb(trainer, step, record)`` after every step.
    """

    def __init__(
        self,
        models: Models,
        optimizers: Mapping[str, torch.optim.Optimizer],
        phases: Sequence[Phase],
        cfg: TrainConfig,
        train_data: Dataset,
        *,
        emas: Mapping[str, EMA] | None = None,
        eval_fn: MultiEvalFn | None = None,
        callbacks: Sequence[MultiCallback] = (),
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if not hasattr(train_data, "__len__") or not hasattr(train_data, "__getitem__"):
            raise InputError(
                "train_data must be a map-style Dataset (with __len__ and __getitem__)"
            )
        emas = dict(emas or {})
        names = [p.name for p in phases]
        if not phases or len(set(names)) != len(names):
            raise InputError(f"phases {names}: give at least one, with unique names")
        for p in phases:
            if p.optimizer not in optimizers:
                raise InputError(
                    f"Phase {p.name!r}: optimizer={p.optimizer!r} is not one of {sorted(optimizers)}"
                )
        for k in emas:
            if k not in models:
                raise InputError(f"emas[{k!r}]: no model of that name (models: {sorted(models)})")
        self.cfg, self.phases, self.train_data = cfg, list(phases), train_data
        self.eval_fn, self.callbacks, self.collate_fn = eval_fn, list(callbacks), collate_fn
        self.out_dir = Path(cfg.out_dir)

        D.init_distributed("nccl" if resolve_device(cfg.device).type == "cuda" else "gloo")
        self.rank, self.world = D.rank(), D.world_size()
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and D.is_distributed():
            self.device = torch.device("cuda", D.local_rank())
        per_rank = cfg.batch_size // max(self.world, 1)
        if cfg.batch_size % self.world or per_rank % cfg.accum_steps:
            raise InputError(
                f"batch_size={cfg.batch_size} must split evenly over {self.world} processes and "
                f"then into accum_steps={cfg.accum_steps} micro-batches"
            )
        self.amp_dtype = resolve_precision(cfg.precision, self.device)

        self.models = {k: D.unwrap(m).to(self.device) for k, m in models.items()}
        self.optimizers = dict(optimizers)
        self.emas = {k: e.to(self.device) for k, e in emas.items()}
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scalers = {k: torch.amp.GradScaler("cuda") for k in self.optimizers if use_scaler}
        self._requires_grad = {
            id(p): p.requires_grad for m in self.models.values() for p in m.parameters()
        }
        self._phase_params = {
            k: [p for g in opt.param_groups for p in g["params"]]
            for k, opt in self.optimizers.items()
        }
        self.checkpoints = CheckpointManager(self.out_dir / "checkpoints", cfg.keep_checkpoints)
        self.step = 0
        self.elapsed = 0.0
        self.evals: list[dict[str, Any]] = []
        self.last_log: dict[str, Any] = {}
        self._jsonl: JSONLLogger | None = None
        self._tb: TensorBoardLogger | None = None
        if D.is_distributed():
            self._broadcast(params=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- hooks (the single-model Trainer overrides them)
    _watched_config: tuple[str, ...] = ("seed", "batch_size", "schedule", "accum_steps")

    def _base_lr(self, name: str) -> float:
        """The schedule's base lr of optimiser ``name``: its ``defaults["lr"]``."""
        return float(self.optimizers[name].defaults["lr"])

    def _log_key(self, phase: str, key: str) -> str:
        return f"{phase}/{key}"

    def _record_extra(self) -> dict[str, Any]:
        return {}

    @property
    def _bpe(self) -> int:
        return max(len(self.train_data) // self.cfg.batch_size, 1)  # type: ignore[arg-type]

    def stateful_objects(self) -> dict[str, Any]:
        """Checkpoint contents: models, ``opt_<name>``, ``ema_<name>``, ``scaler_<name>``."""
        objs: dict[str, Any] = dict(self.models)
        objs.update({f"opt_{k}": v for k, v in self.optimizers.items()})
        objs.update({f"ema_{k}": v for k, v in self.emas.items()})
        objs.update({f"scaler_{k}": v for k, v in self.scalers.items()})
        return objs

    # ---- checkpoints (collective)
    def save_checkpoint(self) -> None:
        rng_all: list[Any] = [get_rng_state()]
        if D.is_distributed():
            rng_all = [None] * self.world
            dist.all_gather_object(rng_all, get_rng_state())
        D.barrier()
        if self.is_main:
            extra = {
                "step": self.step,
                "epoch": self.step // self._bpe,
                "elapsed": self.elapsed,
                "world_size": self.world,
                "rng": rng_all,
                "config": self.cfg.to_dict(),
            }
            self.checkpoints.save(self.step, self.stateful_objects(), extra)
        D.barrier()

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        state = self.checkpoints.load(self.stateful_objects(), path=path)
        if state is None:
            return False
        extra = state["extra"]
        self.step, self.elapsed = int(extra["step"]), float(extra.get("elapsed", 0.0))
        saved = extra.get("config", {})
        now = self.cfg.to_dict()
        changed = [
            k for k in ("seed", "batch_size", "accum_steps") if k in saved and saved[k] != now[k]
        ]
        if changed:
            warnings.warn(
                f"resuming with a changed config ({', '.join(changed)}); "
                "the run will not match an uninterrupted one",
                stacklevel=3,
            )
        rng = extra.get("rng") or []
        if len(rng) == self.world:
            set_rng_state(rng[self.rank])
        else:
            seed_everything(self.cfg.seed + self.rank + 1_000_003 * self.step)
        return True

    # ---- one step
    def train_step(self, batch: Any) -> Any:
        """Every phase due at this step on this rank's batch; returns detached logs."""
        return self._train_step(batch)

    def _train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        cfg, step = self.cfg, self.step
        micro = split_batch(to_device(batch, self.device), cfg.accum_steps)
        per_rank = cfg.batch_size // self.world
        mb = per_rank // cfg.accum_steps
        out: dict[str, torch.Tensor] = {}
        for i, phase in enumerate(self.phases):
            if not phase.runs_at(step):
                continue
            opt = self.optimizers[phase.optimizer]
            set_lr(opt, lr_at(step, cfg, base_lr=self._base_lr(phase.optimizer)))
            self._select_grads(phase.optimizer)
            opt.zero_grad(set_to_none=True)
            scaler = self.scalers.get(phase.optimizer)
            sums: dict[str, torch.Tensor] = {}
            for m, part in enumerate(micro):
                lo = self.rank * per_rank + m * mb
                ctx = StepContext(
                    step, phase.name, i, m, lo, lo + mb, cfg.batch_size, cfg.seed, self.device
                )
                with self._autocast():
                    loss, logs = phase.loss(self.models, part, ctx)
                scaled = loss.float() * (phase.every / cfg.accum_steps)
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
                for k, v in {"loss": loss, **logs}.items():
                    v = self._scalar(v) / cfg.accum_steps
                    sums[k] = sums[k] + v if k in sums else v
            params = self._phase_params[phase.optimizer]
            self._all_reduce_grads(params)
            if scaler is not None:
                scaler.unscale_(opt)
            if cfg.grad_clip is not None:
                norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                sums["grad_norm"] = self._scalar(norm)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            out.update({self._log_key(phase.name, k): v for k, v in sums.items()})
        self._restore_grads()
        for name, ema in self.emas.items():
            ema.update(self.models[name])
        if D.is_distributed():
            self._broadcast(params=False)
        self.step += 1
        return out

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _select_grads(self, opt_name: str) -> None:
        own = {id(p) for p in self._phase_params[opt_name]}
        for m in self.models.values():
            for p in m.parameters():
                p.requires_grad_(id(p) in own and self._requires_grad.get(id(p), True))

    def _restore_grads(self) -> None:
        for m in self.models.values():
            for p in m.parameters():
                p.requires_grad_(self._requires_grad.get(id(p), True))

    def _all_reduce_grads(self, params: list[torch.Tensor]) -> None:
        if not D.is_distributed():
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    @torch.no_grad()
    def _broadcast(self, params: bool) -> None:
        for m in self.models.values():
            tensors = list(m.parameters()) if params else []
            for t in [*tensors, *m.buffers()]:
                dist.broadcast(t, src=0)

    def _scalar(self, v: Any) -> torch.Tensor:
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        if isinstance(v, torch.Tensor):
            return v.detach().to(self.device, dtype).reshape(())
        return torch.tensor(float(v), dtype=dtype, device=self.device)

    # ---- evaluation
    def evaluate(self) -> dict[str, Any]:
        """``eval_fn`` on rank 0 with the EMA modules where there are some."""
        metrics: dict[str, Any] = {}
        if self.eval_fn is not None and self.is_main:
            targets = {
                k: (self.emas[k].module if k in self.emas else m) for k, m in self.models.items()
            }
            modes = {k: t.training for k, t in targets.items()}
            for t in targets.values():
                t.eval()
            with torch.no_grad():
                metrics = dict(self.eval_fn(targets))
            for k, t in targets.items():
                t.train(modes[k])
        D.barrier()
        return metrics

    # ---- the loop
    def fit(self, resume: bool | str | Path = False) -> MultiTrainResult:
        """Train until ``cfg.steps``; ``resume=True`` continues from the latest checkpoint."""
        cfg = self.cfg
        resumed = False
        if resume:
            resumed = self.load_checkpoint(None if resume is True else Path(resume))
        if not resumed:
            self.step, self.elapsed = 0, 0.0
            seed_everything(cfg.seed + self.rank)
        for m in self.models.values():
            m.train()
        already_done = self.step >= cfg.steps
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out_dir / "config.json", cfg.to_dict())
            self._jsonl = JSONLLogger(
                self.out_dir / "log.jsonl", resume_step=self.step if resumed else None
            )
            self._tb = TensorBoardLogger(self.out_dir / "tb") if cfg.tensorboard else None
        try:
            self._run()
            if self.eval_fn is not None and not already_done:
                self._log_eval()
            if not cfg.checkpoint_every or self.step % cfg.checkpoint_every:
                self.save_checkpoint()
            weights = self._save_weights()
        finally:
            for lg in (self._jsonl, self._tb):
                if lg is not None:
                    lg.close()
            self._jsonl, self._tb = None, None
        return MultiTrainResult(self.step, self.out_dir, weights, self.last_log, self.evals)

    def _batches(self) -> Iterator[Any]:
        loader: DataLoader = make_loader(
            self.train_data, self.cfg, self.step, collate_fn=self.collate_fn, device=self.device
        )
        return iter(loader)

    def _run(self) -> None:
        cfg = self.cfg
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        t_last = time.perf_counter()
        steps: Any = range(self.step, cfg.steps)
        if self.is_main:
            steps = progress(steps, desc="train", total=cfg.steps, initial=self.step)
        for _, batch in zip(steps, self._batches()):
            logs = self._train_step(batch)
            for k, v in logs.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                counts[k] = counts.get(k, 0) + 1
            now = time.perf_counter()
            self.elapsed += now - t_last
            record: dict[str, Any] = {}
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                record = self._log_train(sums, counts)
                sums, counts = {}, {}
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                self._log_eval()
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            for cb in self.callbacks:
                cb(self, self.step, record)
            t_last = time.perf_counter()

    def _log_train(self, sums: dict[str, torch.Tensor], counts: dict[str, int]) -> dict[str, Any]:
        names = sorted(sums)  # the same on every rank: phases run on the same steps
        means = torch.zeros(0, dtype=torch.float64)
        if names:
            means = torch.stack([sums[k] / counts[k] for k in names])
            if self.device.type != "cuda":
                means = means.cpu()  # gloo reduces CPU tensors
            means = D.all_reduce_mean(means).cpu()
        record: dict[str, Any] = {"step": self.step, "epoch": round(self.step / self._bpe, 4)}
        record.update({k: float(v) for k, v in zip(names, means.tolist())})
        record.update(self._record_extra())
        record["time"] = round(self.elapsed, 4)
        bad = [k for k in names if k.split("/")[-1] == "loss" and not math.isfinite(record[k])]
        if bad:
            raise KnnlabError(
                f"the training loss {bad[0]} became {record[bad[0]]} at step {self.step}; "
                "lower the learning rates, set grad_clip, or check the data for NaN/Inf"
            )
        self.last_log = record
        self._write(record)
        return record

    def _log_eval(self) -> None:
        metrics = self.evaluate()
        if not self.is_main or not metrics:
            return
        record = {"step": self.step, **{f"eval/{k}": v for k, v in metrics.items()}}
        record["time"] = round(self.elapsed, 4)
        self.evals.append(record)
        self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        if self._jsonl is not None:
            self._jsonl.log(record)
        if self._tb is not None:
            self._tb.log(record, self.step)

    def _save_weights(self) -> dict[str, Path]:
        paths: dict[str, Path] = {}
        meta = {"step": self.step, "seed": self.cfg.seed}
        for name, m in self.models.items():
            paths[name] = self.out_dir / f"{name}.safetensors"
            if self.is_main:
                save_weights(m, paths[name], meta)
        for name, ema in self.emas.items():
            paths[f"{name}_ema"] = self.out_dir / f"{name}_ema.safetensors"
            if self.is_main:
                save_weights(ema.module, paths[f"{name}_ema"], meta)
        D.barrier()
        return paths


def fit_multi(
    models: Models,
    optimizers: Mapping[str, torch.optim.Optimizer],
    phases: Sequence[Phase],
    cfg: TrainConfig,
    train_data: Dataset,
    *,
    resume: bool | str | Path = False,
    **kwargs: Any,
) -> MultiTrainResult:
    """``MultiTrainer(models, optimizers, phases, cfg, train_data, **kwargs).fit(resume)``."""
    return MultiTrainer(models, optimizers, phases, cfg, train_data, **kwargs).fit(resume=resume)
