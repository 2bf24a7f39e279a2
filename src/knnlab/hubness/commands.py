"""Commands of the hubness method: ``knnlab train gan``, ``knnlab experiment hubness``."""

from __future__ import annotations

import click

from knnlab.errors import KnnlabError


@click.command(name="gan")
def train_gan() -> None:
    """Train the built-in GAN."""
    raise KnnlabError("not implemented yet")


@click.command(name="hubness")
def experiment_hubness() -> None:
    """Hubness experiment."""
    raise KnnlabError("not implemented yet")
