"""Sampling a key-code diffusion pipeline, with or without a hubness prior on the initial noise.

With DDIM (η = 0) a sample is a deterministic function of its initial noise x_T ~ N(0, I), a
Gaussian vector of dimension C·h·w. Such vectors have hubs (points that occur often in the k-NN lists
of the others; Radovanović et al. 2010), and Liang et al. (ICML 2022) show that GAN latents that are
hubs decode to better images. :func:`hub_initial_noise` asks the same of diffusion: it draws pools of
x_T and keeps the hubs (:class:`knnlab.hubness.HubSampler` on the flattened x_T); the baseline
:func:`scaled_initial_noise` is a truncation-like ψ·x_T.
"""

from __future__ import annotations

import torch

from knnlab.bright.pipeline import KeyCodeDiffusionPipeline
from knnlab.errors import InputError

__all__ = ["hub_initial_noise", "scaled_initial_noise"]


def hub_initial_noise(
    pipe: KeyCodeDiffusionPipeline,
    n: int,
    *,
    threshold: int,
    k: int = 5,
    pool_size: int = 10_000,
    seed: int = 0,
) -> tuple[torch.Tensor, dict]:
    """``n`` initial noises ``(n, C, h, w)`` that are hubs of their pool, and the sampler's stats."""
    from knnlab.hubness import HubSampler

    c = pipe.codes
    dim = c.channels * c.height * c.width
    sampler = HubSampler(latent_dim=dim, k=k, threshold=threshold, pool_size=pool_size, seed=seed)
    z = sampler.sample(n)
    assert isinstance(z, torch.Tensor)
    stats = {key: v for key, v in sampler.stats.items() if key != "hub_values"}
    return z.reshape(n, c.channels, c.height, c.width).float(), stats


def scaled_initial_noise(
    pipe: KeyCodeDiffusionPipeline, n: int, *, psi: float, seed: int = 0
) -> torch.Tensor:
    """``ψ · x_T`` for fresh x_T ``(n, C, h, w)`` (a truncation-like baseline; ψ in (0, 1])."""
    if not 0 < psi <= 1:
        raise InputError(f"psi={psi}: must be in (0, 1]")
    return psi * pipe.initial_noise(n, torch.Generator().manual_seed(seed))
