"""Commands of the BRIGHT method: ``knnlab train bright``, ``knnlab eval bright``,
``knnlab experiment bright``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from knnlab.errors import InputError

__all__ = ["eval_bright", "experiment_bright", "train_bright"]


def _threads(n: int) -> None:
    import torch

    if n < 1:
        raise InputError(f"--threads {n}: must be >= 1")
    torch.set_num_threads(n)


@click.command(name="bright")
@click.option("--data", default="MNIST", show_default=True, help="MNIST, CelebA6000 or a folder.")
@click.option("--config", "config", default="tiny", show_default=True,
              type=click.Choice(["tiny", "celeba64", "ffhq256"]), help="Model preset.")  # fmt: skip
@click.option("--baseline", default=None, type=click.Choice(["vq", "rq", "kl"]),
              help="Train a baseline at the same code size instead of BRIGHT.")  # fmt: skip
@click.option("--steps", default=2000, show_default=True, help="Optimisation steps.")
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=2e-3, show_default=True, help="Adam lr (betas 0, 0.99).")
@click.option(
    "--ema-decay", default=None, type=float, help="Keep an EMA of the weights; saved as the model."
)
@click.option(
    "--gan",
    is_flag=True,
    help="Add the non-saturating GAN term (StyleGAN2 ResNet D, lazy R1 gamma=4 every 16).",
)
@click.option("--train-limit", default=None, type=int, help="Use only the first N training images.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in OUT.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("outputs/train_bright"),
              show_default=True, help="OUT/model (save_pretrained), log.jsonl, checkpoints/.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--threads", default=1, show_default=True, help="CPU threads.")
def train_bright(data, config, baseline, steps, batch_size, lr, ema_decay, gan, train_limit, seed,
                 resume, out, device, threads) -> None:  # fmt: skip
    """Train a BRIGHT key-code autoencoder (or a VQ / RQ / KL baseline) with 20·MSE.

    \b
    The shipped demo weights (src/knnlab/assets/bright_mnist) are reproduced by
        knnlab train bright --data MNIST --config tiny --steps 600 --batch-size 16 --seed 0 -o outputs/bright_mnist
    and copying outputs/bright_mnist/model/{config.json,model.safetensors} there.
    """
    from knnlab.bright.training import BrightTrainConfig, train_autoencoder
    from knnlab.devices import resolve_device

    _threads(threads)
    cfg = BrightTrainConfig(
        data=data, config=config, baseline=baseline, steps=steps, batch_size=batch_size, lr=lr,
        ema_decay=ema_decay, gan=gan, train_limit=train_limit, seed=seed,
    )  # fmt: skip
    summary = train_autoencoder(cfg, out, resume=resume, device=str(resolve_device(device)))
    last = summary["last_log"]
    click.echo(
        f"trained {summary['method']} ({config}, code {'×'.join(map(str, summary['code_shape']))}) "
        f"for {summary['steps']} steps in {summary['train_seconds']} s; last train PSNR "
        f"{last.get('psnr', float('nan')):.2f} dB; model in {summary['model_dir']}"
    )


@click.command(name="bright")
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="A folder written by `knnlab train bright` (OUT/model).")  # fmt: skip
@click.option("--data", default="MNIST", show_default=True, help="MNIST, CelebA6000 or a folder.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "test"]))
@click.option("--limit", default=1000, show_default=True, help="Score the first N images.")
@click.option("--features", default="auto", show_default=True,
              help="Feature network for rFID/precision/recall: auto (MNIST classifier on MNIST, "
                   "the CelebA-identity network on CelebA6000, none otherwise), mnist, faces, "
                   "inception, vgg16, or none.")  # fmt: skip
@click.option("--feature-weights", default=None, help="Weights file/URL for --features.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the JSON here.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=1, show_default=True)
def eval_bright(model_dir, data, split, limit, features, feature_weights, out, device,
                threads) -> None:  # fmt: skip
    """PSNR, SSIM, rFID/precision/recall, code usage, decoder params and FLOPs on held-out images."""
    from knnlab.bright.data import load_image_set
    from knnlab.bright.evaluate import evaluate_autoencoder
    from knnlab.bright.training import load_autoencoder
    from knnlab.devices import resolve_device
    from knnlab.io_utils import atomic_write_json

    _threads(threads)
    model: Any = load_autoencoder(model_dir)
    c = model.config
    images = load_image_set(data, split, size=c.image_size, channels=c.image_channels, limit=limit)
    dev = resolve_device(device)
    net, name = None, None
    auto = {"mnist": "mnist", "celeba6000": "faces"}.get(data.lower(), "none")
    choice = auto if features == "auto" else features
    if choice != "none":
        from knnlab.metrics.features import get_extractor

        net, name = get_extractor(choice, dev, feature_weights), choice
    ev = evaluate_autoencoder(model, images, feature_net=net, feature_name=name, device=dev)
    ev.pop("_recon")
    keys = ["psnr", "ssim", "rfid", "precision", "recall", "usage_summary", "decoder_params",
            "grid_params", "decoder_gflops"]  # fmt: skip
    for k in keys:
        if k in ev:
            v = ev[k]
            click.echo(f"{k:>15}: {v:.4f}" if isinstance(v, float) else f"{k:>15}: {v}")
    if out is not None:
        atomic_write_json(out, {"model": str(model_dir), "data": data, "split": split, **ev})
        click.echo(f"wrote {out}")


@click.command(name="bright")
@click.option("--data", "datasets", multiple=True, default=("MNIST", "CelebA6000"),
              show_default=True, help="Data sets (repeatable).")  # fmt: skip
@click.option("--methods", default="bright,vq,rq,kl", show_default=True)
@click.option("--mnist-steps", default=600, show_default=True, help="Steps per MNIST row.")
@click.option("--celeba-steps", default=600, show_default=True, help="Steps per CelebA row.")
@click.option("--mnist-batch-size", default=16, show_default=True)
@click.option("--celeba-batch-size", default=16, show_default=True)
@click.option("--celeba-train-limit", type=int, default=None,
              help="Use only the first N CelebA training faces (default: all 4 800; MNIST uses all).")  # fmt: skip
@click.option("--mnist-eval-limit", default=500, show_default=True, help="Held-out MNIST images.")
@click.option("--celeba-eval-limit", default=600, show_default=True, help="Held-out CelebA images.")
@click.option("--quick", is_flag=True, help="A smoke run: 5 steps, 64 held-out images.")
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("outputs/bright"),
              show_default=True, help="results.json + figures; OUT/runs/ holds models and logs.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=1, show_default=True)
def experiment_bright(datasets, methods, mnist_steps, celeba_steps, mnist_batch_size,
                      celeba_batch_size, celeba_train_limit, mnist_eval_limit, celeba_eval_limit,
                      quick, seed, out, device, threads) -> None:  # fmt: skip
    """BRIGHT vs VQ / RQ / KL at equal code size on MNIST and CelebA 64²: table and figures."""
    from knnlab.bright.experiment import BrightExperimentConfig, run_experiment
    from knnlab.devices import resolve_device
    from knnlab.io_utils import check_writable
    from knnlab.results import write_experiment

    check_writable(Path(out) / "results.json", what="-o")  # before the training runs
    _threads(threads)
    if quick:
        mnist_steps = celeba_steps = 5
        mnist_eval_limit = celeba_eval_limit = 64
    cfg = BrightExperimentConfig(
        datasets=tuple(datasets), methods=tuple(m.strip() for m in methods.split(",")),
        steps={"MNIST": mnist_steps, "CelebA6000": celeba_steps},
        batch_size={"MNIST": mnist_batch_size, "CelebA6000": celeba_batch_size},
        train_limit={"MNIST": None, "CelebA6000": celeba_train_limit},
        eval_limit={"MNIST": mnist_eval_limit, "CelebA6000": celeba_eval_limit},
        seed=seed, device=str(resolve_device(device)),
    )  # fmt: skip
    res = run_experiment(cfg, Path(str(out) + "_runs"))
    write_experiment(out, res)
    table = res.table("reconstruction")
    cols = ["data", "method", "code size", "steps", "train s", "PSNR", "SSIM", "rFID",
            "precision", "recall", "usage", "decoder params (M)", "decoder GFLOPs"]  # fmt: skip
    click.echo("| " + " | ".join(cols) + " |")
    click.echo("|" + "---|" * len(cols))
    for r in table.rows:
        cells = [f"{r[c]:.4g}" if isinstance(r[c], float) else ("" if r[c] is None else str(r[c]))
                 for c in cols]  # fmt: skip
        click.echo("| " + " | ".join(cells) + " |")
    click.echo(f"wrote {out}/results.json")
