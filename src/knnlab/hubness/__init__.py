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

# the built-in MNIST GAN, generator adapters, named generators and real images, the experiment
from knnlab.hubness.experiment import HubnessExperimentConfig, run_experiment
from knnlab.hubness.gan import Discriminator, GANConfig, Generator, builtin_generator
from knnlab.hubness.generators import (
    GENERATORS,
    GeneratorAdapter,
    NamedGenerator,
    as_generator,
    load_generator,
    register_generator,
)
from knnlab.hubness.real_images import REAL_IMAGES, RealImages, register_real_images

__all__ += [
    "GENERATORS",
    "REAL_IMAGES",
    "Discriminator",
    "GANConfig",
    "Generator",
    "GeneratorAdapter",
    "HubnessExperimentConfig",
    "NamedGenerator",
    "RealImages",
    "as_generator",
    "builtin_generator",
    "load_generator",
    "register_generator",
    "register_real_images",
    "run_experiment",
]
