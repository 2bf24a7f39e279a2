"""The hubness section of ``knnlab demo``: Hubs(t) vs Truncated vs Random on the built-in MNIST GAN,
at demo sizes (metrics on the in-project MNIST classifier's features)."""

from __future__ import annotations

import torch

from knnlab.hubness.experiment import HubnessExperimentConfig, run_experiment
from knnlab.results import ExperimentResult

__all__ = ["TITLE", "demo_config", "section"]

TITLE = "Hubness priors for latent sampling (built-in MNIST GAN)"


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


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """The hubness experiment at demo sizes (MNIST and the shipped weights must be present)."""
    res = run_experiment(demo_config(quick=quick, device=device, seed=seed))
    res.title = TITLE
    return res
