"""``knnlab sample bright``: images from a key-code diffusion pipeline, optionally hub-sampled."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["sample_bright"]


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
