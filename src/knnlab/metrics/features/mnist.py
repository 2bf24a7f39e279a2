"""A small MNIST digit classifier trained in-project; its penultimate layer (128-d) is the feature
space of knnlab's default generative metrics on MNIST ("FID (MNIST-classifier features)").

Using a domain classifier's features for FID-style scores on MNIST is common practice (Inception-v3
features are poorly suited to 28x28 digits). Numbers computed on it are comparable only with other
numbers computed on the same network, never with Inception-based FIDs; every table says which.

``train(...)`` trains it (deterministic for a given seed on CPU); ``save``/``load`` write and read
``config.json`` + ``model.safetensors``; ``builtin_classifier()`` loads the shipped weights in
``knnlab/assets/mnist_classifier/``, which ``knnlab train gan --classifier`` reproduces.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from knnlab.errors import DataNotFoundError, InputError
from knnlab.hub import PretrainedMixin

__all__ = [
    "BUILTIN_CLASSIFIER_DIR",
    "ClassifierConfig",
    "MNISTClassifier",
    "builtin_classifier",
    "load",
    "save",
    "train",
]

log = logging.getLogger(__name__)

BUILTIN_CLASSIFIER_DIR = Path(__file__).resolve().parents[2] / "assets" / "mnist_classifier"

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass
class ClassifierConfig:
    channels: int = 16  # width of the first conv (the second has 2x)
    feature_dim: int = 128  # size of the penultimate layer = the feature space
    num_classes: int = 10
    dropout: float = 0.25


class MNISTClassifier(PretrainedMixin, nn.Module):
    """``images (B, 1, H, W)`` in ``[0, 1]`` (resized to 28x28 if needed) -> logits ``(B, 10)``;
    ``features(x)`` -> ``(B, feature_dim)`` (post-ReLU penultimate activations)."""

    name = "mnist-classifier"
    config_class = ClassifierConfig
    legacy_model_types = ("knnlab.MNISTClassifier",)

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config or ClassifierConfig()
        c, f = self.config.channels, self.config.feature_dim
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14 -> 7
        )
        self.fc = nn.Linear(2 * c * 7 * 7, f)
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(f, self.config.num_classes)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise InputError(f"images have shape {tuple(x.shape)}; expected (B, C, H, W)")
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] != 1:
            raise InputError(f"images have {x.shape[1]} channels; expected 1 or 3")
        if x.shape[-2:] != (28, 28):
            x = F.interpolate(
                x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True
            )
        return (x.float() - MNIST_MEAN) / MNIST_STD

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(self._prep(x)).flatten(1)
        return F.relu(self.fc(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def save(model: MNISTClassifier, directory: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (``model.save_pretrained``)."""
    return model.save_pretrained(directory)


def load(directory: str | Path, device: str | torch.device = "cpu") -> MNISTClassifier:
    """Load a classifier written by :func:`save` (eval mode; ``MNISTClassifier.from_pretrained``)."""
    if not (Path(directory) / "model.safetensors").is_file():
        raise DataNotFoundError(
            f"{directory}: no MNIST classifier here (needs config.json and model.safetensors); "
            "train one with `knnlab train gan --classifier --out DIR`"
        )
    return MNISTClassifier.from_pretrained(directory, map_location=device)


def builtin_classifier(device: str | torch.device = "cpu") -> MNISTClassifier:
    """The shipped classifier (``knnlab/assets/mnist_classifier``)."""
    return load(BUILTIN_CLASSIFIER_DIR, device)


@torch.no_grad()
def accuracy(model: MNISTClassifier, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Top-1 accuracy on uint8 images ``x (N, 28, 28)`` and labels ``y (N,)``."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[i : i + batch_size]).float().div(255.0).unsqueeze(1)
        correct += int((model(xb).argmax(1).numpy() == y[i : i + batch_size]).sum())
    return correct / len(x)


def train(
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    config: ClassifierConfig | None = None,
    device: str | torch.device = "cpu",
) -> MNISTClassifier:
    """Train the classifier on uint8 images ``x_train (N, 28, 28)``, labels ``y_train (N,)``
    with Adam and light random shifts (±2 px). Deterministic for a given seed on CPU."""
    if x_train.ndim != 3 or len(x_train) != len(y_train):
        raise InputError(
            f"x_train {x_train.shape} / y_train {y_train.shape}: expected (N, 28, 28) and (N,)"
        )
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout draws from the global generator inside this process
    model = MNISTClassifier(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.from_numpy(x_train).float().div(255.0).unsqueeze(1)
    y = torch.from_numpy(y_train.astype(np.int64))
    n = len(x)
    steps = epochs * (n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(n // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb = x[idx]
            shift = torch.randint(-2, 3, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3)).to(device)
            loss = F.cross_entropy(model(xb), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                log.info(
                    "classifier epoch %d step %d/%d loss %.4f", epoch, step, steps, loss.item()
                )
    log.info("classifier trained in %.1f s", time.perf_counter() - t0)
    return model.eval()
