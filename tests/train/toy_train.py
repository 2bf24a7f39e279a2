"""A tiny training script the tests run as a subprocess (plain python or torchrun).

python toy_train.py OUT [--steps N] [--batch B] [--ckpt-every K] [--hang-at S] [--resume] [--noise]

Writes OUT/model.safetensors (rank 0, via the Trainer) and OUT/rank{r}.safetensors (every rank).
``--hang-at S`` stops making progress after step S (its checkpoint written) so a test can SIGKILL it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from knnlab.train import TrainConfig, Trainer, rank


class ToyData(torch.utils.data.Dataset):
    """Item i is a function of (seed, i) only."""

    def __init__(self, n: int = 96, seed: int = 0) -> None:
        self.n, self.seed = n, seed
        self.w = torch.linspace(-1, 1, 8)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + i)
        x = torch.randn(8, generator=g)
        y = (x * self.w).sum(0, keepdim=True) + 0.1 * torch.randn(1, generator=g)
        return x, y


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ckpt-every", type=int, default=4)
    ap.add_argument("--hang-at", type=int, default=-1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--noise", action="store_true", help="the loss draws from the global RNG")
    args = ap.parse_args(argv)

    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch,
        lr=1e-2,
        schedule="cosine",
        warmup_steps=3,
        grad_clip=5.0,
        ema_decay=0.9,
        log_every=2,
        checkpoint_every=args.ckpt_every,
        out_dir=args.out,
        device="cpu",
        seed=3,
        tensorboard=False,
    )

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        if args.noise:
            x = x + 0.05 * torch.randn_like(x)
        return nn.functional.mse_loss(model(x), y), {}

    def hang(trainer: Trainer, step: int, logs: dict) -> None:
        if step == args.hang_at:
            print(f"hanging at step {step}", flush=True)
            time.sleep(600)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic whether run in a subprocess or a test process
    try:
        model = make_model()
        Trainer(model, cfg, loss_fn, ToyData(), callbacks=[hang]).fit(resume=args.resume)
    finally:
        torch.set_num_threads(threads)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(Path(args.out) / f"rank{rank()}.safetensors"))


if __name__ == "__main__":
    main()
