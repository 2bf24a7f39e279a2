"""The single-model training loop: ``Trainer(model, cfg, loss_fn, train_data).fit(resume=True)``.

``Trainer`` is :class:`~knnlab.train.MultiTrainer` with one model (``"model"``), one optimiser
(``"optimizer"``), one phase and at most one EMA, so both loops share one implementation. The loop,
step by step (``Trainer.fit``):

1. start the process group when run under torchrun; place the model;
2. restore the latest checkpoint (``resume=True``) or seed the RNGs (``cfg.seed + rank``);
3. for each step: take this rank's share of the step's global batch (the order is a function of
   ``(seed, epoch)`` only, so a resumed run sees the same batches), set the scheduled lr, run
   ``loss_fn(model, batch) -> (loss, logs)`` (per micro-batch with ``cfg.accum_steps``), backward,
   average the gradients over ranks, clip, optimiser step, EMA update;
4. every ``log_every`` steps write the mean losses (averaged over ranks) to ``log.jsonl``;
   every ``eval_every`` steps call ``eval_fn`` on the EMA (or the model); every
   ``checkpoint_every`` steps write a checkpoint;
5. at the end write ``model.safetensors`` (and ``model_ema.safetensors``) into ``out_dir``.

Resuming (``fit(resume=True)``) restores model, optimiser, EMA, step and every rank's RNG states, and
the sample order depends only on the step, so on CPU a killed-and-resumed run ends bitwise equal to
an uninterrupted one (tested with SIGKILL). On GPU the same holds up to non-deterministic kernels
(set ``torch.use_deterministic_algorithms(True)`` for bitwise). The one visible difference: the
first log line after a resume averages only the steps run since the checkpoint.
Under torchrun each rank computes the same global batch's share and the gradients are averaged
with one all-reduce (BatchNorm buffers are broadcast from rank 0 after each step), so N processes
match 1 process up to float summation order (tested to 1e-5 with 2 gloo processes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from knnlab.train import distributed as D
from knnlab.train.config import TrainConfig
from knnlab.train.ema import EMA
from knnlab.train.loader import StepBatchSampler, make_loader, to_device
from knnlab.train.multi import MultiTrainer, Phase, StepContext
from knnlab.train.schedule import lr_at, make_optimizer

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


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns (rank 0 has the paths; other ranks get them too)."""

    step: int  # steps completed
    out_dir: Path
    model_path: Path  # out_dir / model.safetensors
    ema_path: Path | None  # out_dir / model_ema.safetensors when EMA is on
    last_log: dict[str, Any] = field(default_factory=dict)  # the last training log record
    evals: list[dict[str, Any]] = field(default_factory=list)  # every evaluation of this call


class Trainer(MultiTrainer):
    """Train one model with one optimiser. See the module docstring for the loop.

    Args:
        model: the module to train (moved to ``cfg.device``).
        cfg: the :class:`TrainConfig`.
        loss_fn: ``loss_fn(model, batch) -> (loss, logs)``; ``logs`` maps names to scalars
            (floats or 0-d tensors) that are averaged and logged alongside ``loss``.
        train_data: a map-style Dataset whose item ``i`` depends only on ``i`` (and its own seed).
        eval_fn: ``eval_fn(model) -> {metric: value}``, called on rank 0 in eval mode under
            ``torch.no_grad`` with the EMA module when EMA is on (else the plain model).
        callbacks: ``cb(trainer, step, logs)`` after every step (``step`` = steps completed).
        optimizer: an optimiser over ``model``'s parameters (default: ``make_optimizer``); the
            schedule's base lr is ``cfg.lr``.
        collate_fn: the DataLoader's collate function (default: torch's).
    """

    _watched_config = ("seed", "batch_size", "lr", "schedule", "optimizer", "accum_steps")

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
        self.loss_fn = loss_fn
        model = D.unwrap(model)
        opt = optimizer or make_optimizer(model.parameters(), cfg)
        emas = (
            {"model": EMA(model, cfg.ema_decay, cfg.ema_rampup)}
            if cfg.ema_decay is not None
            else {}
        )

        def phase_loss(models: Any, batch: Any, ctx: StepContext) -> Any:
            return loss_fn(models["model"], batch)

        multi_eval = None
        if eval_fn is not None:
            single_eval = eval_fn

            def multi_eval(targets: dict[str, nn.Module]) -> dict[str, float]:
                return single_eval(targets["model"])

        super().__init__(
            {"model": model}, {"optimizer": opt}, [Phase("train", "optimizer", phase_loss)], cfg,
            train_data, emas=emas, eval_fn=multi_eval, callbacks=callbacks,  # type: ignore[arg-type]
            collate_fn=collate_fn,
        )  # fmt: skip

    @property
    def model(self) -> nn.Module:
        return self.models["model"]

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.optimizers["optimizer"]

    @property
    def ema(self) -> EMA | None:
        return self.emas.get("model")

    @property
    def epoch(self) -> int:
        """The epoch the next step belongs to."""
        return self.step // self._bpe

    def stateful_objects(self) -> dict[str, Any]:
        """What a checkpoint holds: ``model``, ``optimizer`` and ``ema`` (when on)."""
        objs: dict[str, Any] = {"model": self.model, "optimizer": self.optimizer}
        if self.ema is not None:
            objs["ema"] = self.ema
        objs.update({f"scaler_{k}": v for k, v in self.scalers.items()})
        return objs

    def train_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimisation step on this rank's batch; returns detached (loss, logs)."""
        logs = self._train_step(batch)
        return logs["loss"], logs

    # hooks of MultiTrainer: the schedule's base lr, log names, the lr in each log line
    def _base_lr(self, name: str) -> float:
        return self.cfg.lr

    def _log_key(self, phase: str, key: str) -> str:
        return key

    def _record_extra(self) -> dict[str, Any]:
        return {"lr": lr_at(self.step - 1, self.cfg)}

    def fit(self, resume: bool | str | Path = False) -> TrainResult:  # type: ignore[override]
        """Train until ``cfg.steps``; ``resume=True`` continues from the latest checkpoint
        (starting fresh when there is none), a path resumes from that checkpoint folder."""
        res = super().fit(resume=resume)
        return TrainResult(
            res.step, res.out_dir, res.weights["model"], res.weights.get("model_ema"),
            res.last_log, res.evals,
        )  # fmt: skip


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
