"""knnlab.train: a small, explicit training loop and the pieces it is built from.

Single model::

    from knnlab.train import TrainConfig, Trainer

    cfg = TrainConfig(steps=10_000, batch_size=64, lr=1e-3, schedule="exp", lr_decay=3.0,
                      steps_per_epoch=200, ema_decay=0.999, out_dir="runs/dncnn")
    def loss_fn(model, batch):
        noisy, clean = batch
        loss = torch.nn.functional.mse_loss(model(noisy), clean)
        return loss, {}
    result = Trainer(model, cfg, loss_fn, dataset, eval_fn=psnr_on_set12).fit(resume=True)

Loops with several models (a GAN) use the building blocks directly: :func:`make_optimizer`,
:func:`lr_at` / :func:`set_lr`, :class:`EMA`, :class:`CheckpointManager` (any dict of
name -> module / optimiser / EMA), :class:`JSONLLogger`, :func:`make_loader` (the resumable sample order) and the helpers in
:mod:`knnlab.train.distributed`. Everything runs unchanged under ``torchrun --nproc_per_node N``.
"""

from knnlab.train import distributed
from knnlab.train.checkpoint import (
    CheckpointManager,
    load_weights,
    pack_state,
    save_weights,
    unpack_state,
)
from knnlab.train.config import TrainConfig
from knnlab.train.distributed import (
    all_reduce_mean,
    barrier,
    cleanup_distributed,
    init_distributed,
    is_distributed,
    is_main_process,
    local_rank,
    rank,
    unwrap,
    world_size,
)
from knnlab.train.ema import EMA
from knnlab.train.logger import JSONLLogger, TensorBoardLogger, read_jsonl, tensorboard_available
from knnlab.train.rng import epoch_permutation, get_rng_state, seed_everything, set_rng_state
from knnlab.train.schedule import lr_at, make_optimizer, set_lr
from knnlab.train.trainer import (
    StepBatchSampler,
    Trainer,
    TrainResult,
    fit,
    make_loader,
    to_device,
)

__all__ = [
    "EMA",
    "CheckpointManager",
    "JSONLLogger",
    "StepBatchSampler",
    "TensorBoardLogger",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "all_reduce_mean",
    "barrier",
    "cleanup_distributed",
    "distributed",
    "epoch_permutation",
    "fit",
    "get_rng_state",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "load_weights",
    "local_rank",
    "lr_at",
    "make_loader",
    "make_optimizer",
    "pack_state",
    "rank",
    "read_jsonl",
    "save_weights",
    "seed_everything",
    "set_lr",
    "set_rng_state",
    "tensorboard_available",
    "to_device",
    "unpack_state",
    "unwrap",
    "world_size",
]
