"""VGG-16 (Simonyan & Zisserman 2015) up to fc2 in plain PyTorch (no torchvision): the 4096-d
feature space of improved precision and recall (Kynkäänniemi et al. 2019, sec. 2).

Layer names follow torchvision (``features.N``, ``classifier.0/3/6``) so that its ImageNet state dict
``vgg16-397923af.pth`` loads as is, from a file or downloaded from :data:`VGG16_WEIGHTS_URL` (checked
against its full SHA-256, also when found locally; ``vgg16`` in :mod:`knnlab.hub`). Features are the fc2 activations after ReLU. Inputs
``(B, C, H, W)`` in ``[0, 1]`` (C = 1 or 3) are resized to 224x224 and normalised with the ImageNet
mean and standard deviation. The weights are not shipped.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from knnlab.errors import InputError
from knnlab.hub import WeightsEntry, register_weights
from knnlab.metrics.features.weights import feature_weights, load_state_dict

__all__ = ["VGG16_WEIGHTS_SHA256", "VGG16_WEIGHTS_URL", "VGG16Features", "vgg16_fc2"]

VGG16_WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_WEIGHTS_FILENAME = "vgg16-397923af.pth"
VGG16_WEIGHTS_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
VGG16_WEIGHTS = register_weights(
    WeightsEntry(
        name="vgg16",
        filename=VGG16_WEIGHTS_FILENAME,
        subdir="vgg16",
        url=VGG16_WEIGHTS_URL,
        sha256=VGG16_WEIGHTS_SHA256,
        licence="BSD-3-Clause (torchvision model zoo)",
        description="VGG-16 trained on ImageNet (torchvision)",
    )
)

_CFG: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """``images (B, C, H, W)`` in ``[0, 1]`` -> fc2 features ``(B, 4096)`` (``features``) or ImageNet
    logits ``(B, 1000)`` (``forward``)."""

    name = "vgg16-fc2"
    feature_dim = 4096

    def __init__(self, resize_input: bool = True) -> None:
        super().__init__()
        self.resize_input = resize_input
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features_net = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 1000),
        )
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InputError(f"images have shape {tuple(x.shape)}; expected (B, 1 or 3, H, W)")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize_input:
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        x = (x - mean) / std
        x = self.features_net(x)  # (B, 512, H/32, W/32)
        return F.adaptive_avg_pool2d(x, 7).flatten(1)  # (B, 25088)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[:5](self._trunk(x))  # fc1, relu, dropout, fc2, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self._trunk(x))

    def load_torchvision_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision ``vgg16`` state dict (``features.*`` keys are renamed)."""
        renamed = {
            ("features_net." + k[len("features.") :] if k.startswith("features.") else k): v
            for k, v in state.items()
        }
        self.load_state_dict(renamed)


def vgg16_fc2(
    weights: str | os.PathLike | None = None,
    *,
    download: bool = False,
    pretrained: bool = True,
    resize_input: bool = True,
    sha256: str | None = VGG16_WEIGHTS_SHA256,
) -> VGG16Features:
    """VGG-16 up to fc2 in eval mode with torchvision's ImageNet weights.

    ``weights``: a ``.pth``/``.safetensors`` file or an http(s) URL (SHA-256 checked); ``None`` looks
    in ``$KNNLAB_WEIGHTS/vgg16/`` and the cache, then downloads :data:`VGG16_WEIGHTS_URL` only if
    ``download=True``. ``pretrained=False`` gives random weights (tests).
    """
    model = VGG16Features(resize_input=resize_input)
    if pretrained:
        path = feature_weights(VGG16_WEIGHTS, weights, sha256=sha256, download=download)
        try:
            model.load_torchvision_state_dict(load_state_dict(path))
        except RuntimeError as e:
            raise InputError(f"{path}: not a torchvision VGG-16 state dict ({e})") from e
    return model.eval()
