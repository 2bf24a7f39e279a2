"""A tiny G + D training script the tests run as a subprocess (plain python or torchrun).

python toy_gan.py OUT [--steps N] [--batch B] [--accum A] [--hang-at S] [--resume] [--noise]

Three phases (D, G, lazy R1 every 4 steps), an EMA with ramp-up for each model, a 0.1x learning rate
on the generator's ``mapping``. Writes OUT/G.safetensors, OUT/G_ema.safetensors, ... (rank 0, via
the MultiTrainer) and OUT/rank{r}.safetensors (every rank, both models).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from knnlab.train import EMA, MultiTrainer, Phase, TrainConfig, lr_scaled_groups, r1_penalty, rank


class Points(torch.utils.data.Dataset):
    """Item i: a 2-d point of a two-Gaussian mixture, a function of i only."""

    def __len__(self) -> int:
        return 96

    def __getitem__(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(1000 + i)
        centre = torch.tensor([1.5, 0.0]) if i % 2 else torch.tensor([-1.5, 0.5])
        return centre + 0.3 * torch.randn(2, generator=g)


class Gen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mapping = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.synthesis = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.mapping(z))


def make_models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    gen = Gen()
    disc = nn.Sequential(nn.Linear(2, 16), nn.Softplus(), nn.Linear(16, 1))
    return gen, disc


def build(args: argparse.Namespace) -> tuple[MultiTrainer, nn.Module, nn.Module]:
    gen, disc = make_models()
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch,
        accum_steps=args.accum,
        schedule="cosine",
        warmup_steps=2,
        grad_clip=10.0,
        log_every=2,
        checkpoint_every=4,
        out_dir=args.out,
        device="cpu",
        seed=5,
        tensorboard=False,
    )
    opt_g = torch.optim.Adam(lr_scaled_groups(gen, {"mapping": 0.1}), lr=5e-3, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=5e-3, betas=(0.5, 0.9))

    def jitter(x: torch.Tensor) -> torch.Tensor:
        return x + 0.05 * torch.randn_like(x) if args.noise else x  # global RNG

    def d_loss(m, real, ctx):
        with torch.no_grad():
            fake = m["G"](ctx.randn(4))
        loss = F.softplus(m["D"](fake)).mean() + F.softplus(-m["D"](jitter(real))).mean()
        return loss, {"real": m["D"](real).mean()}

    def g_loss(m, real, ctx):
        return F.softplus(-m["D"](jitter(m["G"](ctx.randn(4))))).mean(), {}

    def r1(m, real, ctx):
        return r1_penalty(m["D"], real, gamma=1.0), {}

    phases = [Phase("D", "D", d_loss), Phase("G", "G", g_loss), Phase("D_r1", "D", r1, every=4)]

    def hang(trainer: MultiTrainer, step: int, record: dict) -> None:
        if step == args.hang_at:
            print(f"hanging at step {step}", flush=True)
            time.sleep(600)

    trainer = MultiTrainer(
        {"G": gen, "D": disc},
        {"G": opt_g, "D": opt_d},
        phases,
        cfg,
        Points(),
        emas={"G": EMA(gen, 0.9, rampup=0.5), "D": EMA(disc, 0.8, rampup=0.5)},
        callbacks=[hang],
    )
    return trainer, gen, disc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--accum", type=int, default=1)
    ap.add_argument("--hang-at", type=int, default=-1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--noise", action="store_true", help="the losses also draw from the global RNG")
    args = ap.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer, gen, disc = build(args)
        trainer.fit(resume=args.resume)
    finally:
        torch.set_num_threads(threads)
    state = {f"G.{k}": v.contiguous() for k, v in gen.state_dict().items()}
    state.update({f"D.{k}": v.contiguous() for k, v in disc.state_dict().items()})
    save_file(state, str(Path(args.out) / f"rank{rank()}.safetensors"))


if __name__ == "__main__":
    main()
