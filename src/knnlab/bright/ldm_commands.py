"""``knnlab sample bright`` (images from a key-code diffusion pipeline, optionally hub-sampled) and
``knnlab experiment bright-generation``."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["experiment_bright_generation", "sample_bright"]


@click.command(name="bright")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A pipeline folder (pipeline.json, unet/, scheduler/, autoencoder/).",
)
@click.option("-n", "--num", default=64, show_default=True, help="Number of images.")
@click.option(
    "-o", "--out", required=True, type=click.Path(path_type=Path), help="Output grid (PNG)."
)
@click.option("--steps", default=50, show_default=True, help="DDIM steps.")
@click.option(
    "--hubs",
    "hub_threshold",
    type=int,
    default=None,
    help="Keep only initial noises whose k-occurrence in their pool is >= this (hubness prior).",
)
@click.option("--k", default=5, show_default=True, help="k of the k-occurrence (with --hubs).")
@click.option("--pool-size", default=10_000, show_default=True, help="Pool size (with --hubs).")
@click.option("--seed", default=0, show_default=True, help="Seed of the initial noise.")
@click.option("--nrow", default=8, show_default=True, help="Images per row of the grid.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def sample_bright(
    model_dir: Path,
    num: int,
    out: Path,
    steps: int,
    hub_threshold: int | None,
    k: int,
    pool_size: int,
    seed: int,
    nrow: int,
    device: str,
) -> None:
    """Sample NUM images with DDIM and write them as one grid image to OUT."""
    import torch

    from knnlab.bright.pipeline import KeyCodeDiffusionPipeline
    from knnlab.bright.sample import hub_initial_noise
    from knnlab.devices import resolve_device
    from knnlab.errors import InputError
    from knnlab.hubness.train_gan import save_grid_png

    if num < 1:
        raise InputError(f"-n {num}: must be >= 1")
    if out.suffix.lower() != ".png":
        raise InputError(f"-o {out}: the grid is written as PNG; give a .png path")
    pipe = KeyCodeDiffusionPipeline.from_pretrained(model_dir).to(resolve_device(device))
    latents, note = None, "random x_T"
    if hub_threshold is not None:
        latents, stats = hub_initial_noise(
            pipe, num, threshold=hub_threshold, k=k, pool_size=pool_size, seed=seed
        )
        note = (
            f"hub x_T (k={k}, threshold={hub_threshold}, acceptance {stats['acceptance_rate']:.2%})"
        )
    images = pipe(
        num,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        latents=latents,
    )
    try:
        save_grid_png(images, out, nrow=nrow, scale=1 if images.shape[-1] >= 64 else 2)
    except OSError as e:
        raise InputError(f"cannot write {out} ({e.strerror or e})") from e
    click.echo(f"wrote {out}: {num} images, {steps} DDIM steps, {note}")


@click.command(name="bright-generation")
@click.option("--data", default="MNIST", show_default=True,
              help="MNIST or CelebA6000 (64², face features, the CelebA GAN).")  # fmt: skip
@click.option("--methods", default="bright,kl,vq", show_default=True, help="LDM rows to train.")
@click.option("--ae-steps", type=int, default=None,
              help="Autoencoder steps (each); default as `experiment bright`: 600.")  # fmt: skip
@click.option("--code-images", default=20_000, show_default=True,
              help="Training images encoded for the LDMs (the first N).")  # fmt: skip
@click.option(
    "--unet", default="tiny", show_default=True, help="UNet preset: tiny, small, release."
)
@click.option("--ldm-steps", default=2000, show_default=True, help="LDM steps (each).")
@click.option("--ldm-batch-size", default=64, show_default=True)
@click.option("--ldm-lr", default=3e-4, show_default=True, help="Adam learning rate of the LDMs.")
@click.option("-n", "--num-samples", default=1000, show_default=True, help="Samples per row.")
@click.option("--ddim-steps", default=50, show_default=True)
@click.option(
    "--real-images", default=1000, show_default=True, help="Held-out images scored against."
)
@click.option("--psi", default=0.8, show_default=True, help="ψ of the scaled-noise baseline.")
@click.option("--quick", is_flag=True, help="A smoke run: a few steps, 64 samples.")
@click.option("--save-assets", is_flag=True,
              help="Also write the BRIGHT pipeline to src/knnlab/assets/bright_ldm_mnist (the demo's).")  # fmt: skip
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path),
              default=Path("outputs/bright-generation"), show_default=True,
              help="results.json + figures; OUT_runs/ holds models, logs and pipelines.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True)
def experiment_bright_generation(data, methods, ae_steps, code_images, unet, ldm_steps, ldm_batch_size,
                                 ldm_lr, num_samples, ddim_steps, real_images, psi, quick,
                                 save_assets, seed, out, device) -> None:  # fmt: skip
    """Latent diffusion on BRIGHT key codes vs KL / VQ latents on MNIST or CelebA 64²: the
    generation table (FID, KID, precision, recall, density, coverage; with the project's GAN of the
    data), novelty, and hub vs random vs ψ-scaled initial noise."""
    from knnlab.bright.generation import (
        GENERATION_ASSET_DIR,
        GenerationConfig,
        run_generation_experiment,
    )
    from knnlab.devices import resolve_device
    from knnlab.errors import InputError
    from knnlab.io_utils import check_writable
    from knnlab.results import write_experiment

    if save_assets and data != "MNIST":
        raise InputError("--save-assets writes the demo's MNIST pipeline; use it with --data MNIST")
    check_writable(Path(out) / "results.json", what="-o")  # before half an hour of work
    if quick:
        ae_steps, ldm_steps, num_samples, real_images, code_images = 5, 20, 64, 64, 512
    cfg = GenerationConfig(
        data=data, methods=tuple(m.strip() for m in methods.split(",") if m.strip()), ae_steps=ae_steps,
        code_images=code_images, unet=unet, ldm_steps=ldm_steps, ldm_batch_size=ldm_batch_size,
        ldm_lr=ldm_lr, num_samples=num_samples, ddim_steps=ddim_steps, real_images=real_images,
        psi=psi, code_pool=4 * num_samples if not quick else 256,
        hub_pool=10_000 if not quick else 1000, seed=seed, device=str(resolve_device(device)),
    )  # fmt: skip
    res = run_generation_experiment(
        cfg, Path(str(out) + "_runs"), save_assets=GENERATION_ASSET_DIR if save_assets else None
    )
    write_experiment(out, res)
    for table in res.tables:
        cols = table.columns or list(table.rows[0])
        click.echo(f"\n{table.caption}")
        click.echo("| " + " | ".join(cols) + " |")
        click.echo("|" + "---|" * len(cols))
        for r in table.rows:
            cells = [f"{r[c]:.4g}" if isinstance(r.get(c), float) else
                     ("" if r.get(c) is None else str(r[c])) for c in cols]  # fmt: skip
            click.echo("| " + " | ".join(cells) + " |")
    click.echo(f"\n{res.summary}\nwrote {out}/results.json")
