"""Shared fixtures: where the benchmark data and published weights are, skipping cleanly without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KNNLAB_PROGRESS", "0")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The data root (``$KNNLAB_DATA`` or ../shared/datasets); skips the test when absent."""
    from knnlab.paths import data_root

    try:
        root = data_root(required=False)
    except Exception as e:  # a set but wrong KNNLAB_DATA
        pytest.skip(f"benchmark data unavailable: {e}")
    if root is None:
        pytest.skip("benchmark data not found: set KNNLAB_DATA or provide ../shared/datasets")
    return root


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """The weights root (``$KNNLAB_WEIGHTS`` or ../shared/weights); skips the test when absent."""
    from knnlab.paths import weights_root

    try:
        root = weights_root(required=False)
    except Exception as e:
        pytest.skip(f"published weights unavailable: {e}")
    if root is None:
        pytest.skip("published weights not found: set KNNLAB_WEIGHTS or provide ../shared/weights")
    return root
