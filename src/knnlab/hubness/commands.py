"""Commands of the hubness method: ``knnlab train gan``, ``knnlab experiment hubness``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from knnlab.errors import KnnlabError

_TRUST_HELP = (
    "Allow StyleGAN2-ADA / StyleGAN3 network pickles (.pkl). Unpickling runs arbitrary code from "
    "the file, so pass this only for files from a source you trust."
)


@click.command(name="gan")
@click.option(
    "--data",
    type=click.Choice(["MNIST", "CelebA6000"], case_sensitive=False),
    default="MNIST",
    show_default=True,
    help="MNIST: the built-in 28x28 digit GAN (OUT/gan). CelebA6000: 64x64 RGB faces from the "
    "train split, centre 178x178 crop, antialiased resize (OUT/gan_celeba64).",
)
@click.option("--steps", default=None, type=int, help="Steps [default: 2500 MNIST, 1500 CelebA].")
@click.option(
    "--batch-size", default=None, type=int, help="Global batch size [default: 64 MNIST, 32 CelebA]."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the whole run.")
@click.option(
    "--classifier/--no-classifier",
    default=False,
    show_default=True,
    help="Also train the MNIST feature classifier (OUT/mnist_classifier).",
)
@click.option("--classifier-only", is_flag=True, help="Train only the MNIST feature classifier.")
@click.option("--classifier-epochs", default=2, show_default=True, help="Classifier epochs.")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/train_gan"),
    show_default=True,
    help="Writes OUT/gan/ (or OUT/gan_celeba64/: config.json, model.safetensors, "
    "train_log.jsonl) and OUT/gan_samples.png; with --classifier also OUT/mnist_classifier/.",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoints and log.jsonl of the run [default: runs/train-gan-<data>].",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --run-dir.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16", "auto"]),
    default="fp32",
    show_default=True,
    help="Autocast precision (fp16 needs CUDA and uses a GradScaler; auto: bf16/fp16 on CUDA).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option(
    "--threads",
    default=1,
    show_default=True,
    help="CPU threads (results are bitwise reproducible for a fixed thread count on CPU).",
)
def train_gan(
    data: str,
    steps: int | None,
    batch_size: int | None,
    seed: int,
    classifier: bool,
    classifier_only: bool,
    classifier_epochs: int,
    out: Path,
    run_dir: Path | None,
    resume: bool,
    precision: str,
    device: str,
    threads: int,
) -> None:
    """Train a built-in GAN (Z -> W -> image) on the shared loop; optionally the MNIST classifier.

    \b
    The shipped weights in knnlab/assets/ are reproduced (on CPU, seed 0, 1 thread) by
        knnlab train gan --classifier --out src/knnlab/assets
        knnlab train gan --data CelebA6000 --out src/knnlab/assets
    (it also writes gan_samples.png there, not part of the shipped files). Runs under
    `torchrun --nproc_per_node N` (only rank 0 writes) and continues a killed run with --resume.
    """
    import torch

    from knnlab.devices import resolve_device
    from knnlab.hubness.train_gan import (
        load_celeba64_uint8,
        load_mnist_uint8,
        recipe,
        save_grid_png,
        train_config_dict,
    )
    from knnlab.hubness.train_gan import train_gan as run_train
    from knnlab.io_utils import atomic_write_text
    from knnlab.metrics.features import mnist as mnist_clf
    from knnlab.train import is_main_process

    if threads < 1:
        raise KnnlabError(f"--threads {threads}: must be >= 1")
    faces = data.lower() == "celeba6000"
    if faces and (classifier or classifier_only):
        raise KnnlabError("--classifier trains the MNIST classifier; use it with --data MNIST")
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    main = int(os.environ.get("RANK", "0")) == 0  # torchrun; the group starts later
    if faces:
        x_train = load_celeba64_uint8("train")
    else:
        x_train, y_train = load_mnist_uint8("train")
    if (classifier or classifier_only) and main:
        t0 = time.perf_counter()
        model = mnist_clf.train(x_train, y_train, epochs=classifier_epochs, seed=seed, device=dev)
        x_test, y_test = load_mnist_uint8("test")
        acc = mnist_clf.accuracy(model.cpu(), x_test, y_test)
        mnist_clf.save(model, out / "mnist_classifier")
        click.echo(
            f"classifier: test accuracy {acc:.4f}, {time.perf_counter() - t0:.0f} s -> "
            f"{out / 'mnist_classifier'}"
        )
    if classifier_only:
        return
    cfg, gan_cfg = recipe("celeba64" if faces else "mnist", seed=seed)
    if steps is not None:
        cfg.steps = steps
    if batch_size is not None:
        cfg.batch_size = batch_size
    cfg.precision = precision
    name = "gan_celeba64" if faces else "gan"
    run_dir = run_dir or Path(f"runs/train-gan-{'celeba64' if faces else 'mnist'}")
    t0 = time.perf_counter()
    G, _, history = run_train(x_train, cfg, gan_cfg, device=dev, run_dir=run_dir, resume=resume)
    seconds = time.perf_counter() - t0
    if not is_main_process():
        return
    G = G.cpu()
    G.save_pretrained(out / name)
    header = {"train_config": train_config_dict(cfg), "seconds": round(seconds, 1)}
    if resume:
        header["resumed"] = True
    log_lines = [json.dumps(header)] + [json.dumps(r) for r in history]
    atomic_write_text(out / name / "train_log.jsonl", "\n".join(log_lines) + "\n")
    with torch.no_grad():
        z = torch.randn(64, G.latent_dim, generator=torch.Generator().manual_seed(1234))
        images = (G(z) + 1.0) / 2.0
    samples = out / f"{name}_samples.png" if faces else out / "gan_samples.png"
    save_grid_png(images, samples, scale=1 if faces else 2)
    click.echo(f"GAN: {cfg.steps} steps in {seconds:.0f} s -> {out / name} (samples: {samples})")


def _int_list(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value.replace(",", " ").split())
    except ValueError as e:
        raise click.BadParameter(f"{value!r}: give integers, e.g. '15,20,25'") from e
    if not out:
        raise click.BadParameter("give at least one threshold")
    return out


@click.command(name="hubness")
@click.option(
    "--generator",
    default="builtin",
    show_default=True,
    help="'builtin' (the shipped MNIST GAN), 'celeba64' (the CelebA6000 64x64 face GAN), a folder "
    "from `knnlab train gan` (OUT/gan), a 'package.module:attribute' generator or factory, or a "
    "StyleGAN2-ADA/StyleGAN3 .pkl (needs --trust-pickle).",
)
@click.option("--trust-pickle", is_flag=True, help=_TRUST_HELP)
@click.option("--n", "n", default=None, type=int, help="Samples per method [default: 10000].")
@click.option(
    "--thresholds",
    callback=_int_list,
    default=None,
    help="Hub thresholds t (k-occurrence >= t), comma-separated [default: 10,15,20; on the "
    "built-in GAN's 64-d W with pools of 10000 they accept about 13%, 4% and 1% of latents].",
)
@click.option("--k", default=5, show_default=True, help="k of the k-occurrence.")
@click.option(
    "--pool-size", default=None, type=int, help="Latents per hub-search pool [default: 10000]."
)
@click.option(
    "--space",
    type=click.Choice(["auto", "w", "z"]),
    default="auto",
    show_default=True,
    help="Latent space of hub search and truncation (auto: W when the generator has one).",
)
@click.option(
    "--real-images",
    default="auto",
    show_default=True,
    help="Real images the samples are compared with: mnist (MNIST test set; novelty against the "
    "training set) or celeba64 (CelebA6000 faces at 64x64); auto: the data the generator was "
    "trained on (by its name, else by its image shape).",
)
@click.option(
    "--features",
    default="auto",
    show_default=True,
    help="Feature network of the metrics, by name (mnist, inception, vgg16, faces, ... as "
    "knnlab.metrics.features.get_extractor knows them); auto: mnist for MNIST, faces for CelebA. "
    "inception/vgg16 need --feature-weights.",
)
@click.option("--feature-weights", default=None, help="Weights file or URL of the feature network.")
@click.option("--quick", is_flag=True, help="Small sizes (n=500, pools of 2000): seconds.")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("outputs/hubness"),
    show_default=True,
    help="Folder for results.json, the figures and report.html (written atomically).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, help="Seed of every random draw.")
def experiment_hubness(
    generator: str,
    trust_pickle: bool,
    n: int | None,
    thresholds: tuple[int, ...] | None,
    k: int,
    pool_size: int | None,
    space: str,
    real_images: str,
    features: str,
    feature_weights: str | None,
    quick: bool,
    out: Path,
    device: str,
    seed: int,
) -> None:
    """Hubs(t) vs Truncated(0.7, 0.3) vs Random: FID, precision, recall, density, coverage.

    \b
    Reproduces the structure of Liang et al. (ICML 2022), Table 1, on the built-in MNIST GAN (or any
    generator) with metrics on the in-project MNIST classifier's features; prints the table and
    writes OUT/results.json (tables, protocol, machine, timings), the PNG figures and
    OUT/report.html rendered from them. Pickled StyleGAN networks are loaded only with
    --trust-pickle, because unpickling executes code stored in the file.
    """
    from knnlab.hubness.experiment import HubnessExperimentConfig, quick_config, run_experiment
    from knnlab.hubness.tables import format_table
    from knnlab.report import Report
    from knnlab.results import write_experiment

    cfg = quick_config() if quick else HubnessExperimentConfig()
    cfg.generator, cfg.trust_pickle, cfg.k, cfg.space = generator, trust_pickle, k, space
    cfg.real_images, cfg.features, cfg.feature_weights = real_images, features, feature_weights
    cfg.device, cfg.seed = device, seed
    if n is not None:
        cfg.n = n
    if thresholds is not None:
        cfg.thresholds = thresholds
    if pool_size is not None:
        cfg.pool_size = pool_size
    t0 = time.perf_counter()
    res = run_experiment(cfg)
    report = Report("knnlab: hubness priors for latent sampling")
    report.add_experiment(res)
    res.add_file("report.html", report.to_html().encode("utf-8"))
    results_path = write_experiment(out, res)
    click.echo(format_table(res))
    n_png = sum(name.endswith(".png") for name in res.files)
    click.echo(
        f"({time.perf_counter() - t0:.0f} s) wrote {results_path}, {out / 'report.html'} and "
        f"{n_png} PNG files in {out}"
    )
