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

Several models (a GAN: generator and discriminator, lazy R1, an EMA per model, per-module learning
rates, gradient accumulation, mixed precision)::

    from knnlab.train import EMA, MultiTrainer, Phase, lr_scaled_groups, r1_penalty

    phases = [Phase("D", "D", d_loss), Phase("G", "G", g_loss),
              Phase("D_r1", "D", lambda m, x, ctx: (r1_penalty(m["D"], x, 10.0), {}), every=16)]
    opt_g = torch.optim.Adam(lr_scaled_groups(G, {"mapping": 0.01}), lr=2e-3, betas=(0, 0.99))
    MultiTrainer({"G": G, "D": D}, {"G": opt_g, "D": opt_d}, phases, cfg, data,
                 emas={"G": EMA(G, 0.999, rampup=0.05)}).fit(resume=True)

The building blocks are public too: :func:`make_optimizer`, :func:`lr_at` / :func:`set_lr`,
:class:`EMA`, :class:`CheckpointManager` (any dict of name -> module / optimiser / EMA),
:class:`JSONLLogger`, :func:`make_loader` (the resumable sample order) and the helpers in
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
from knnlab.train.ema import EMA, ema_beta
from knnlab.train.logger import JSONLLogger, TensorBoardLogger, read_jsonl, tensorboard_available
from knnlab.train.multi import (
    MultiTrainer,
    MultiTrainResult,
    Phase,
    StepContext,
    fit_multi,
    lr_scaled_groups,
    resolve_precision,
    split_batch,
)
from knnlab.train.regularizers import R1Penalty, r1_penalty
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
    "MultiTrainResult",
    "MultiTrainer",
    "Phase",
    "R1Penalty",
    "StepBatchSampler",
    "StepContext",
    "TensorBoardLogger",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "all_reduce_mean",
    "barrier",
    "cleanup_distributed",
    "distributed",
    "ema_beta",
    "epoch_permutation",
    "fit",
    "fit_multi",
    "get_rng_state",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "load_weights",
    "local_rank",
    "lr_at",
    "lr_scaled_groups",
    "make_loader",
    "make_optimizer",
    "pack_state",
    "r1_penalty",
    "rank",
    "read_jsonl",
    "resolve_precision",
    "save_weights",
    "seed_everything",
    "set_lr",
    "set_rng_state",
    "split_batch",
    "tensorboard_available",
    "to_device",
    "unpack_state",
    "unwrap",
    "world_size",
]
