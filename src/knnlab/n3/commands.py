"""Commands of the N3 method: ``knnlab denoise``, ``knnlab eval denoise``, ``knnlab train denoise``."""

from __future__ import annotations

import click

from knnlab.errors import KnnlabError


@click.command()
def denoise() -> None:
    """Denoise an image."""
    raise KnnlabError("not implemented yet")


@click.command(name="denoise")
def eval_denoise() -> None:
    """Evaluate a denoiser."""
    raise KnnlabError("not implemented yet")


@click.command(name="denoise")
def train_denoise() -> None:
    """Train a denoiser."""
    raise KnnlabError("not implemented yet")
