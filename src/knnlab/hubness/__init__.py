"""knnlab.hubness: hubness measures and hubness-prior latent sampling."""

from knnlab.hubness.measures import as_k_occurrence, hubness_stats, k_occurrence
from knnlab.hubness.sampler import (
    HubSampler,
    HubSamplerConfig,
    LatentSampler,
    RandomSampler,
    RandomSamplerConfig,
    SamplerConfig,
    TruncationSampler,
    TruncationSamplerConfig,
)

__all__ = [
    "HubSampler",
    "HubSamplerConfig",
    "LatentSampler",
    "RandomSampler",
    "RandomSamplerConfig",
    "SamplerConfig",
    "TruncationSampler",
    "TruncationSamplerConfig",
    "as_k_occurrence",
    "hubness_stats",
    "k_occurrence",
]

# the built-in MNIST GAN, generator adapters and the experiment
from knnlab.hubness.experiment import HubnessExperimentConfig, run_experiment
from knnlab.hubness.gan import Discriminator, GANConfig, Generator, builtin_generator
from knnlab.hubness.generators import GeneratorAdapter, as_generator, load_generator

__all__ += [
    "Discriminator",
    "GANConfig",
    "Generator",
    "GeneratorAdapter",
    "HubnessExperimentConfig",
    "as_generator",
    "builtin_generator",
    "load_generator",
    "run_experiment",
]
