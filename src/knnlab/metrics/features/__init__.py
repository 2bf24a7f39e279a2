"""Feature extractors for generative metrics: images ``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, d)``.

- :mod:`~knnlab.metrics.features.mnist`: a small MNIST classifier trained in-project (128-d); the
  default feature space of knnlab's MNIST runs, labelled "MNIST-classifier features" in every table.
- :mod:`~knnlab.metrics.features.inception`: FID's Inception-v3 (``pt_inception-2015-12-05``), 2048-d.
- :mod:`~knnlab.metrics.features.vgg`: VGG-16 fc2 (4096-d), the space of improved precision/recall.

The standard Inception/VGG weights load from a file or a checksummed download
(:mod:`~knnlab.metrics.features.weights`); they are not shipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from knnlab.metrics.features.inception import FIDInceptionV3, inception_v3_fid
from knnlab.metrics.features.mnist import MNISTClassifier, builtin_classifier
from knnlab.metrics.features.vgg import VGG16Features, vgg16_fc2
from knnlab.metrics.features.weights import download_weights, load_state_dict

__all__ = [
    "FIDInceptionV3",
    "MNISTClassifier",
    "VGG16Features",
    "builtin_classifier",
    "download_weights",
    "extract_features",
    "get_extractor",
    "inception_v3_fid",
    "load_state_dict",
    "vgg16_fc2",
]


def get_extractor(
    name: str = "mnist", device: str | torch.device = "cpu", weights: str | None = None
):
    """A feature network by name: ``"mnist"`` (the shipped classifier), ``"inception"`` or ``"vgg16"``
    (standard weights from ``weights``: a file path or an http(s) URL; see their modules)."""
    from knnlab.errors import InputError

    if name in ("mnist", "mnist-classifier"):
        return builtin_classifier(device) if weights is None else _load_mnist(weights, device)
    if name in ("inception", "inception-v3", "fid-inception"):
        return inception_v3_fid(weights).to(device)
    if name in ("vgg16", "vgg", "vgg16-fc2"):
        return vgg16_fc2(weights).to(device)
    raise InputError(f"feature network {name!r}: choose 'mnist', 'inception' or 'vgg16'")


def _load_mnist(path: str, device: str | torch.device) -> MNISTClassifier:
    from knnlab.metrics.features.mnist import load

    return load(path, device)


@torch.no_grad()
def extract_features(
    extractor: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
    images: torch.Tensor | np.ndarray | Iterable[torch.Tensor],
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Features ``(N, d)`` float32 of images ``(N, C, H, W)`` in [0, 1] (or an iterable of batches).

    ``extractor`` is a module with a ``features`` method (the classifiers) or a callable returning
    ``(B, d)``.
    """
    fn = getattr(extractor, "features", extractor)
    if device is None:
        params = list(extractor.parameters()) if isinstance(extractor, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    batches = (
        (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        if isinstance(images, torch.Tensor)
        else images
    )
    out = [fn(b.to(device).float()).float().cpu().numpy() for b in batches]
    if not out:
        raise ValueError("no images given")
    return np.concatenate(out).astype(np.float32, copy=False)
