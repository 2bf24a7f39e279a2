"""The training configuration: one flat dataclass, every field commented."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knnlab.errors import InputError

__all__ = ["TrainConfig"]

_OPTIMIZERS = ("adam", "adamw")
_SCHEDULES = ("constant", "cosine", "exp", "linear")
_PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@dataclass
class TrainConfig:
    """Everything the loop needs to know. Defaults give a short CPU run.

    ``batch_size`` is the *global* batch: under ``torchrun --nproc_per_node N`` each rank takes
    ``batch_size // N`` samples of the same global batch, so a run gives the same result (up to
    floating-point summation order) whatever N is.
    """

    # --- length and data ---
    steps: int = 1000  # total optimisation steps (iterations)
    batch_size: int = 32  # global batch size, split evenly over ranks
    num_workers: int = 0  # DataLoader worker processes per rank
    seed: int = 0  # seeds the sample order, torch/numpy/python RNGs (rank r uses seed + r)

    # --- optimiser ---
    optimizer: str = "adam"  # "adam" | "adamw"
    lr: float = 1e-3  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's (beta1, beta2)
    eps: float = 1e-8  # Adam's epsilon
    weight_decay: float = 0.0  # L2 penalty for "adam", decoupled decay for "adamw"

    # --- learning-rate schedule (see knnlab.train.schedule.lr_at) ---
    schedule: str = "constant"  # "constant" | "cosine" | "exp" | "linear"
    lr_decay: float = 3.0  # "exp": lr * 10^(-lr_decay * progress); 3.0 = three decades (N3Net)
    min_lr_ratio: float = 0.0  # "cosine"/"linear": final lr as a fraction of lr
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr over these first steps
    steps_per_epoch: int | None = None  # if set, the schedule only changes every this many steps
    # (a per-epoch stepped schedule: N3Net uses lr * 10^(-3 * epoch / 50) with schedule="exp").
    # It affects the lr only; the sample order's epoch is always len(dataset) // batch_size steps.

    # --- regularisation and averaging ---
    grad_clip: float | None = None  # clip the global gradient L2 norm to this value (None: off)
    ema_decay: float | None = None  # keep an exponential moving average of the weights (e.g. 0.999)
    ema_rampup: float | None = None  # cap the EMA's half-life at this share of the steps so far
    # (StyleGAN2-ADA's ramp-up; without it a short run's average keeps decay^steps of the init)

    # --- gradient accumulation and mixed precision ---
    accum_steps: int = 1  # split each rank's batch into this many micro-batches (grad accumulation)
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16" (CUDA only, with a GradScaler) | "auto"
    # ("auto": bf16 on CUDA when supported, else fp16 on CUDA; fp32 on CPU)

    # --- bookkeeping ---
    log_every: int = 50  # write a log line (mean of the losses since the last one) every N steps
    eval_every: int | None = None  # call eval_fn every N steps and at the end (None: only at end)
    checkpoint_every: int | None = (
        500  # write a checkpoint every N steps and at the end (None: end)
    )
    keep_checkpoints: int = 3  # how many of the most recent checkpoints to keep on disk
    out_dir: str | Path = "runs/train"  # checkpoints/, log.jsonl, tb/, model.safetensors go here
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" (under torchrun: cuda:LOCAL_RANK)
    tensorboard: bool = True  # also log to out_dir/tb when the tensorboard package is installed
    ddp_find_unused_parameters: bool = False  # unused: gradients are all-reduced without DDP

    # free-form extras a method wants recorded with its run (saved in the checkpoint state)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` naming the field for an impossible setting."""

        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InputError(f"TrainConfig: {msg}")

        need(self.steps >= 1, f"steps={self.steps} must be >= 1")
        need(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1")
        need(self.lr > 0, f"lr={self.lr} must be > 0")
        need(
            self.optimizer in _OPTIMIZERS,
            f"optimizer={self.optimizer!r}; use one of {', '.join(_OPTIMIZERS)}",
        )
        need(
            self.schedule in _SCHEDULES,
            f"schedule={self.schedule!r}; use one of {', '.join(_SCHEDULES)}",
        )
        need(self.warmup_steps >= 0, f"warmup_steps={self.warmup_steps} must be >= 0")
        need(
            self.steps_per_epoch is None or self.steps_per_epoch >= 1,
            f"steps_per_epoch={self.steps_per_epoch} must be None or >= 1",
        )
        need(
            self.grad_clip is None or self.grad_clip > 0,
            f"grad_clip={self.grad_clip} must be None or > 0",
        )
        need(
            self.ema_decay is None or 0.0 <= self.ema_decay < 1.0,
            f"ema_decay={self.ema_decay} must be None or in [0, 1)",
        )
        need(
            self.ema_rampup is None or self.ema_rampup > 0.0,
            f"ema_rampup={self.ema_rampup} must be None or > 0",
        )
        need(self.accum_steps >= 1, f"accum_steps={self.accum_steps} must be >= 1")
        need(
            self.precision in _PRECISIONS,
            f"precision={self.precision!r}; use one of {', '.join(_PRECISIONS)}",
        )
        need(self.log_every >= 1, f"log_every={self.log_every} must be >= 1")
        for name in ("eval_every", "checkpoint_every"):
            v = getattr(self, name)
            need(v is None or v >= 1, f"{name}={v} must be None or >= 1")
        need(self.keep_checkpoints >= 1, f"keep_checkpoints={self.keep_checkpoints} must be >= 1")
        need(self.num_workers >= 0, f"num_workers={self.num_workers} must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings, tuples as lists)."""
        d = dataclasses.asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise an InputError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"TrainConfig: unknown field(s) {', '.join(unknown)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)
