"""The hubness section of ``knnlab demo``: Hubs(t) vs Truncated vs Random on the built-in MNIST GAN,
a small table (metrics on the in-project MNIST classifier's features) and sample grids."""

from __future__ import annotations

import logging
from typing import Any

import torch

from knnlab.hubness.experiment import (
    HubnessExperimentConfig,
    add_report_section,
    run_experiment,
)

__all__ = ["demo_config", "section"]

log = logging.getLogger(__name__)


def demo_config(*, quick: bool, device: torch.device | str, seed: int) -> HubnessExperimentConfig:
    """Sizes of the demo: quick (a few seconds) or full (about a minute on two CPU cores)."""
    if quick:
        return HubnessExperimentConfig(
            n=300,
            pool_size=2_000,
            thresholds=(16,),
            n_real=1_000,
            n_train=5_000,
            n_novelty=300,
            kid_subsets=10,
            seed=seed,
            device=str(device),
            max_pools=100,
        )
    return HubnessExperimentConfig(
        n=2_000,
        pool_size=5_000,
        thresholds=(10, 15, 20),
        n_real=5_000,
        n_train=20_000,
        n_novelty=1_000,
        kid_subsets=20,
        seed=seed,
        device=str(device),
        max_pools=200,
    )


def section(report: Any, *, quick: bool, device: torch.device, seed: int) -> None:
    """Add the hubness section to ``report``; numbers go to ``report.results["hubness"]``."""
    cfg = demo_config(quick=quick, device=device, seed=seed)
    results, artefacts = run_experiment(cfg)
    add_report_section(
        report,
        results,
        artefacts,
        title="Hubness priors for latent sampling (built-in MNIST GAN)",
        compact=True,
    )
    report.results["hubness"] = results
