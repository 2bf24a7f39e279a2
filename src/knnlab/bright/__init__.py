"""knnlab.bright: BRIGHT/BRICS hash-table autoencoders (Yang, Wang, Mahdavi-Amiri, Zhang, "BRIGHT:
Bi-level Feature Representation of Image Collections using Groups of Hash Tables", arXiv 2305.18601).

An encoder maps an image to bounded continuous key codes; each group of key channels looks features
up in its own multi-resolution hash grid (:class:`HashGrid`, tiny-cuda-nn's definition); a
StyleGAN2-style decoder turns the retrieved feature grid into the image.
"""

from knnlab.bright.autoencoder import CONFIGS, BrightAutoencoder, BrightConfig, bright_config
from knnlab.bright.baselines import BaselineAutoencoder, BaselineConfig, baseline_config
from knnlab.bright.hashgrid import HashGrid, HashGridConfig, hash_grid

__all__ = [
    "CONFIGS",
    "BaselineAutoencoder",
    "BaselineConfig",
    "BrightAutoencoder",
    "BrightConfig",
    "HashGrid",
    "HashGridConfig",
    "baseline_config",
    "bright_config",
    "hash_grid",
]
