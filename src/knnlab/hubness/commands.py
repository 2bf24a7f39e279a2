"""Commands of the hubness method: ``knnlab train gan``, ``knnlab experiment hubness``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from knnlab.errors import KnnlabError

_TRUST_HELP = (
    "Allow StyleGAN2-ADA / StyleGAN3 network pickles (.pkl). Unpickling runs arbitrary code from "
    "the file, so pass this only for files from a source you trust."
)


@click.command(name="gan")
@click.option("--steps", default=None, type=int, help="Generator updates [default: 2500].")
@click.option("--batch-size", default=None, type=int, help="Batch size [default: 64].")
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
    help="Writes OUT/gan/ (config.json, model.safetensors, train_log.jsonl) and "
    "OUT/gan_samples.png; with --classifier also OUT/mnist_classifier/.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option(
    "--threads",
    default=1,
    show_default=True,
    help="CPU threads (results are bitwise reproducible for a fixed thread count on CPU).",
)
def train_gan(
    steps: int | None,
    batch_size: int | None,
    seed: int,
    classifier: bool,
    classifier_only: bool,
    classifier_epochs: int,
    out: Path,
    device: str,
    threads: int,
) -> None:
    """Train the built-in MNIST GAN (Z -> W -> 28x28 digit) and optionally the feature classifier.

    \b
    The shipped weights in knnlab/assets/ are reproduced (on CPU, seed 0) by
        knnlab train gan --classifier --out src/knnlab/assets
    (7-14 minutes on one shared CPU core; it also writes gan_samples.png there, not part of the
    shipped files).
    """
    import torch

    from knnlab.devices import resolve_device
    from knnlab.hubness.train_gan import (
        TrainGANConfig,
        load_mnist_uint8,
        save_grid_png,
        train_config_dict,
    )
    from knnlab.hubness.train_gan import train_gan as run_train
    from knnlab.io_utils import atomic_write_text
    from knnlab.metrics.features import mnist as mnist_clf

    if threads < 1:
        raise KnnlabError(f"--threads {threads}: must be >= 1")
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    x_train, y_train = load_mnist_uint8("train")
    if classifier or classifier_only:
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
    cfg = TrainGANConfig(seed=seed)
    if steps is not None:
        cfg.steps = steps
    if batch_size is not None:
        cfg.batch_size = batch_size
    t0 = time.perf_counter()
    G, _, history = run_train(x_train, cfg, device=dev)
    seconds = time.perf_counter() - t0
    G = G.cpu()
    G.save_pretrained(out / "gan")
    log_lines = [json.dumps({"train_config": train_config_dict(cfg), "seconds": round(seconds, 1)})]
    log_lines += [json.dumps(r) for r in history]
    atomic_write_text(out / "gan" / "train_log.jsonl", "\n".join(log_lines) + "\n")
    with torch.no_grad():
        z = torch.randn(64, G.latent_dim, generator=torch.Generator().manual_seed(1234))
        images = (G(z) + 1.0) / 2.0
    save_grid_png(images, out / "gan_samples.png")
    click.echo(
        f"GAN: {cfg.steps} steps in {seconds:.0f} s -> {out / 'gan'} (samples: {out / 'gan_samples.png'})"
    )


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
