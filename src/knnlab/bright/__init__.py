"""knnlab.bright: BRIGHT/BRICS hash-table autoencoders (Yang, Wang, Mahdavi-Amiri, Zhang, "BRIGHT:
Bi-level Feature Representation of Image Collections using Groups of Hash Tables", arXiv 2305.18601).

An encoder maps an image to bounded continuous key codes; each group of key channels looks features
up in its own multi-resolution hash grid (:class:`HashGrid`, tiny-cuda-nn's definition); a
StyleGAN2-style decoder turns the retrieved feature grid into the image.

Part 2, generation: latent diffusion over the key codes (:class:`KeyCodeDiffusionPipeline`, trained by
:func:`knnlab.bright.ldm.train_ldm`, with the release's cosine-variant schedule in
:mod:`knnlab.bright.schedule`), and hub-sampled initial noise (:mod:`knnlab.bright.sample`).
"""

from knnlab.bright.autoencoder import CONFIGS, BrightAutoencoder, BrightConfig, bright_config
from knnlab.bright.baselines import BaselineAutoencoder, BaselineConfig, baseline_config
from knnlab.bright.hashgrid import HashGrid, HashGridConfig, hash_grid
from knnlab.bright.pipeline import CodeMap, KeyCodeDiffusionPipeline, register_autoencoder
from knnlab.bright.schedule import make_betas

__all__ = [
    "CONFIGS",
    "BaselineAutoencoder",
    "BaselineConfig",
    "BrightAutoencoder",
    "BrightConfig",
    "CodeMap",
    "HashGrid",
    "HashGridConfig",
    "KeyCodeDiffusionPipeline",
    "baseline_config",
    "bright_config",
    "hash_grid",
    "make_betas",
    "register_autoencoder",
]
