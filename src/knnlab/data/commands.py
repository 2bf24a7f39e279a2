"""``knnlab data``: list, locate and download data sets."""

from __future__ import annotations

import click

from knnlab.errors import KnnlabError


@click.group()
def data() -> None:
    """List, locate and download data sets."""


@data.command(name="list")
def list_() -> None:
    """List the named data sets and where they resolve."""
    raise KnnlabError("not implemented yet")
