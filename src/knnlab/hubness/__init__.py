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
