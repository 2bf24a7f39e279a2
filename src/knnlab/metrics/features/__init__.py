"""Feature extractors for generative metrics: images ``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, d)``.

- :mod:`~knnlab.metrics.features.mnist`: a small MNIST classifier trained in-project (128-d); the
  default feature space of knnlab's MNIST runs, labelled "MNIST-classifier features" in every table.
- :mod:`~knnlab.metrics.features.faces`: a face-identity network trained in-project on CelebA6000's
  200 identities (256-d), labelled "CelebA-identity features (knnlab)".
- :mod:`~knnlab.metrics.features.inception`: FID's Inception-v3 (``pt_inception-2015-12-05``), 2048-d.
- :mod:`~knnlab.metrics.features.vgg`: VGG-16 fc2 (4096-d), the space of improved precision/recall.

The standard Inception/VGG weights load from a file or a checksummed download
(:mod:`~knnlab.metrics.features.weights`); they are not shipped. :data:`FEATURE_NETWORKS` lists them with their input protocol (resolution,
channels, crop) under the names the command line uses: ``inception``, ``vgg16``, ``mnist``, ``faces``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from knnlab.metrics.features.faces import FACE_FEATURES_LABEL, FaceIdentityNet, builtin_face_network
from knnlab.metrics.features.inception import FIDInceptionV3, inception_v3_fid
from knnlab.metrics.features.mnist import MNISTClassifier, builtin_classifier
from knnlab.metrics.features.vgg import VGG16Features, vgg16_fc2
from knnlab.metrics.features.weights import download_weights, load_state_dict

__all__ = [
    "FEATURE_NETWORKS",
    "MNIST_WEIGHTS_SHA256",
    "FIDInceptionV3",
    "FaceIdentityNet",
    "FeatureNetwork",
    "MNISTClassifier",
    "VGG16Features",
    "builtin_classifier",
    "builtin_face_network",
    "download_weights",
    "extract_features",
    "feature_network",
    "get_extractor",
    "inception_v3_fid",
    "load_state_dict",
    "vgg16_fc2",
]


@dataclass(frozen=True)
class FeatureNetwork:
    """A feature network as the metrics command uses it: how to load it and what input it expects.

    ``load(device, weights)`` returns the extractor (a module with ``features`` or a callable
    ``(B, C, H, W) -> (B, d)``); images are read with ``channels`` channels, centre-cropped to a
    square when ``center_crop``, and resized to ``resolution`` (``None``: fed as they are).
    """

    name: str  # registry key, used in cache file names
    label: str  # how every table names the feature space
    resolution: int | None  # input side in pixels
    channels: int  # 1 (gray) or 3 (RGB)
    center_crop: bool
    load: Callable[[torch.device, str | None], Any]


# sha256 of the shipped knnlab/assets/mnist_classifier/model.safetensors (named when it is missing)
MNIST_WEIGHTS_SHA256 = "eb638288dc8e24cae56f125a4619d424daeaf53cb55205b78109a4c88ea491a2"


def _mnist(device: torch.device, weights: str | None) -> Any:
    from knnlab.errors import DataNotFoundError
    from knnlab.metrics.features.mnist import BUILTIN_CLASSIFIER_DIR

    if weights is not None:
        return _load_mnist(weights, device)
    path = BUILTIN_CLASSIFIER_DIR / "model.safetensors"
    if not path.is_file():
        raise DataNotFoundError(
            f"MNIST classifier weights not found: {path} (sha256 {MNIST_WEIGHTS_SHA256}); "
            "reinstall knnlab, or rebuild them with `knnlab train gan --classifier-only --out "
            f"{BUILTIN_CLASSIFIER_DIR.parent}`"
        )
    return builtin_classifier(device)


def _faces(device: torch.device, weights: str | None) -> Any:
    from knnlab.metrics.features.faces import FaceIdentityNet, builtin_face_network

    if weights is None:
        return builtin_face_network(device)
    return FaceIdentityNet.from_pretrained(weights).to(device)


FEATURE_NETWORKS: dict[str, FeatureNetwork] = {
    "inception": FeatureNetwork(
        "inception",
        "Inception-v3 pool3 2048-d (pt_inception-2015-12-05, FID)",
        299,
        3,
        False,
        lambda device, weights: inception_v3_fid(weights).to(device),
    ),
    "vgg16": FeatureNetwork(
        "vgg16",
        "VGG-16 fc2 4096-d (torchvision ImageNet)",
        224,
        3,
        False,
        lambda device, weights: vgg16_fc2(weights).to(device),
    ),
    "mnist": FeatureNetwork(
        "mnist",
        "MNIST-classifier features (knnlab)",
        28,
        1,
        False,
        _mnist,
    ),
    "faces": FeatureNetwork("faces", FACE_FEATURES_LABEL, 64, 3, True, _faces),
}
_ALIASES = {
    "mnist-classifier": "mnist",
    "inception-v3": "inception",
    "fid-inception": "inception",
    "vgg": "vgg16",
    "vgg16-fc2": "vgg16",
    "celeba-identity": "faces",
}


def feature_network(name: str) -> FeatureNetwork:
    """The registered network ``name`` (``inception``, ``vgg16``, ``mnist``, ``faces``), or a
    user network ``module:attr``: ``attr`` of the importable ``module`` is an extractor (a module
    with ``features``, or a callable ``(B, C, H, W) in [0, 1] -> (B, d)``) or a class built with no
    arguments; its optional attributes ``resolution`` (int) and ``channels`` (1 or 3, default 3) set
    the input. Importing the module runs its code: name only modules you trust."""
    from knnlab.errors import InputError

    key = _ALIASES.get(name.lower(), name.lower())
    if key in FEATURE_NETWORKS:
        return FEATURE_NETWORKS[key]
    if ":" not in name:
        raise InputError(
            f"--features {name!r}: choose {', '.join(FEATURE_NETWORKS)} or module:attr"
        )
    return _user_network(name)


def _user_network(spec: str) -> FeatureNetwork:
    import importlib

    from knnlab.errors import InputError

    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise InputError(f"--features {spec!r}: cannot import it ({type(e).__name__}: {e})") from e
    if isinstance(obj, type):
        obj = obj()
    if not callable(getattr(obj, "features", obj)):
        raise InputError(f"--features {spec!r}: {type(obj).__name__} is not callable")
    res = getattr(obj, "resolution", None)
    channels = int(getattr(obj, "channels", 3))
    if channels not in (1, 3) or (res is not None and int(res) < 1):
        raise InputError(
            f"--features {spec!r}: channels={channels}, resolution={res}; need 1 or 3 and >= 1"
        )

    def load(device: torch.device, weights: str | None) -> Any:
        return obj.to(device) if isinstance(obj, torch.nn.Module) else obj

    return FeatureNetwork(spec, spec, None if res is None else int(res), channels, False, load)


def get_extractor(
    name: str = "mnist", device: str | torch.device = "cpu", weights: str | None = None
):
    """A feature network by name: ``"mnist"`` (the shipped classifier), ``"faces"`` (the shipped
    CelebA-identity network), ``"inception"`` or ``"vgg16"`` (standard weights from ``weights``: a
    file path or an http(s) URL; see their modules), or ``module:attr``."""
    return feature_network(name).load(torch.device(device), weights)


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
