"""A face-identity network trained in-project on CelebA6000; its penultimate layer (256-d) is the
feature space of knnlab's generative metrics on faces, labelled "CelebA-identity features (knnlab)".

It plays the part the MNIST classifier (:mod:`knnlab.metrics.features.mnist`) plays for digits:
Inception-v3 features are the standard for FID but need weights that are not shipped and see
64×64 faces through an ImageNet lens; a network trained to tell the 200 CelebA6000 identities apart
responds to what makes faces differ. Numbers computed on it are comparable only with numbers
computed on the same network, never with Inception FIDs; every table says which.

Input protocol: RGB faces, centre square crop (CelebA's aligned 178×218 -> 178×178), resized to
64×64 with clean-fid's antialiased bicubic (:func:`knnlab.metrics.features.resize.to_input`);
:meth:`FaceIdentityNet.features` takes ``(B, 3, 64, 64)`` in ``[0, 1]`` (other sizes are resized
with antialiased bilinear; gray inputs are repeated to 3 channels).

Training (:func:`train_face_features`, ``knnlab train features --data CelebA6000``): the train split
of ``manifest.tsv`` (4 800 images, 24 per identity), random horizontal flips and ±4 px shifts,
AdamW with a cosine schedule and label smoothing, on the shared loop :class:`knnlab.train.Trainer`;
accuracy is reported on the held-out validation + test splits (1 200 images, 6 per identity).
The shipped weights (``knnlab/assets/face_features/``, 2.2 MB, 545k parameters) are
``OUT/model`` of ``knnlab train features --data CelebA6000 --out OUT`` (1 600 steps of batch 64,
seed 0, 1 thread: 7.2 min of CPU time, 44 min wall on a shared 2-core machine); held-out identity
accuracy 0.414 (1 200 faces; chance 0.005), train accuracy 0.730. They are checked against
:data:`FACE_WEIGHTS_SHA256` when they load.
"""

from __future__ import annotations

import csv
import itertools
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from knnlab.errors import DataNotFoundError, InputError
from knnlab.hub import WEIGHTS_NAME, PretrainedMixin, sha256_file

__all__ = [
    "BUILTIN_FACE_DIR",
    "FACE_FEATURES_LABEL",
    "FACE_WEIGHTS_SHA256",
    "FaceFeatureConfig",
    "FaceIdentityNet",
    "FaceTrainConfig",
    "builtin_face_network",
    "identity_accuracy",
    "load_celeba_faces",
    "train_face_features",
]

log = logging.getLogger(__name__)

BUILTIN_FACE_DIR = Path(__file__).resolve().parents[2] / "assets" / "face_features"
FACE_FEATURES_LABEL = "CelebA-identity features (knnlab)"
# sha256 of the shipped knnlab/assets/face_features/model.safetensors
FACE_WEIGHTS_SHA256 = "3bb05e693da6e6477f16f040e669a64b32e63d8abc6b9c2221df8b82a2ed0bd3"

# per-channel mean/std of the CelebA6000 train split at 64×64 (inputs are standardised with them)
_MEAN = (0.521, 0.430, 0.379)
_STD = (0.306, 0.285, 0.283)


@dataclass
class FaceFeatureConfig:
    """The network: a stride-2 stem and three conv stages (64 -> 32 -> 16 -> 8 -> 4 px), a 1×1
    reduction and a linear feature layer."""

    width: int = 24  # channels of the stem; each stage doubles them (24 -> 48 -> 96 -> 192)
    head_channels: int = 64  # 1×1 conv before flattening the 4×4 map (keeps the fc layer small)
    feature_dim: int = 256  # penultimate layer = the feature space
    num_classes: int = 200  # CelebA6000 identities
    dropout: float = 0.3  # before the classifier, training only
    image_size: int = 64  # input resolution the network was trained at


class FaceIdentityNet(PretrainedMixin, nn.Module):
    """``images (B, 3, H, W)`` in ``[0, 1]`` -> logits ``(B, num_classes)``;
    :meth:`features` -> ``(B, feature_dim)`` (post-ReLU penultimate activations)."""

    config_class = FaceFeatureConfig
    name = "celeba-identity"

    def __init__(self, config: FaceFeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FaceFeatureConfig()
        c = self.config.width
        # stem: 3x3 stride-2 conv (64 -> 32 px), then three conv stages each ending in a 2x2 max pool
        stages: list[nn.Module] = [
            nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
        ]
        chans = [c, 2 * c, 4 * c, 8 * c]
        for cin, cout in itertools.pairwise(chans):
            stages += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.conv = nn.Sequential(*stages)  # (B, 8c, S/16, S/16)
        h = self.config.head_channels
        self.reduce = nn.Sequential(
            nn.Conv2d(8 * c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU(inplace=True)
        )
        side = self.config.image_size // 16
        self.fc = nn.Linear(h * side * side, self.config.feature_dim)
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(self.config.feature_dim, self.config.num_classes)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InputError(f"images have shape {tuple(x.shape)}; expected (B, 1 or 3, H, W)")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        s = self.config.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return (x.float() - self.get_buffer("mean")) / self.get_buffer("std")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.reduce(self.conv(self._prep(x))).flatten(1)  # (B, head_channels * 4 * 4)
        return F.relu(self.fc(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def builtin_face_network(device: str | torch.device = "cpu") -> FaceIdentityNet:
    """The shipped network (``knnlab/assets/face_features``), its weights checked by sha256."""
    path = BUILTIN_FACE_DIR / WEIGHTS_NAME
    how = (
        "reinstall knnlab, or rebuild them with `knnlab train features --data CelebA6000 "
        f"--out DIR` and copy DIR/model/* to {BUILTIN_FACE_DIR}"
    )
    if not path.is_file():
        raise DataNotFoundError(
            f"face feature weights not found: {path} (sha256 {FACE_WEIGHTS_SHA256 or 'unknown'}); "
            + how
        )
    if FACE_WEIGHTS_SHA256:
        digest = sha256_file(path)
        if digest != FACE_WEIGHTS_SHA256:
            raise InputError(
                f"face feature weights {path}: sha256 {digest} is not the shipped "
                f"{FACE_WEIGHTS_SHA256}; {how}"
            )
    return FaceIdentityNet.from_pretrained(BUILTIN_FACE_DIR).to(device)


# --------------------------------------------------------------------------- data


def _read_manifest(root: Path) -> list[tuple[str, str, str]]:
    path = root / "manifest.tsv"
    if not path.is_file():
        raise DataNotFoundError(f"{path}: missing; CelebA6000 needs manifest.tsv beside images/")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["file"], r["split"], r["class_dir"]) for r in rows]


def load_celeba_faces(
    splits: tuple[str, ...] = ("train_dataset",), root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CelebA6000 faces of the given manifest splits (``train_dataset``, ``validation_dataset``,
    ``test_dataset``) as ``uint8 (N, 3, 64, 64)`` (centre crop + clean-fid bicubic) and identity
    labels ``int64 (N,)`` (0..199, the sorted ``celeb_<i>`` folders of the manifest)."""
    from knnlab.data import dataset_dir
    from knnlab.metrics.features.resize import to_input
    from knnlab.metrics.streaming import read_uint8

    base = Path(root) if root is not None else dataset_dir("CelebA6000")
    rows = _read_manifest(base)
    ids = sorted({r[2] for r in rows}, key=lambda s: (len(s), s))
    label_of = {name: i for i, name in enumerate(ids)}
    chosen = [r for r in rows if r[1] in splits]
    if not chosen:
        raise InputError(f"splits {splits}: no rows in {base / 'manifest.tsv'}")
    xs = np.empty((len(chosen), 3, 64, 64), dtype=np.uint8)
    for i, (name, _, _) in enumerate(chosen):
        x = to_input(read_uint8(base / "images" / name, 3), 64, "clean", center_crop=True)
        xs[i] = np.rint(x.numpy() * 255.0).astype(np.uint8)
    labels = torch.tensor([label_of[r[2]] for r in chosen], dtype=torch.int64)
    return torch.from_numpy(xs), labels


# --------------------------------------------------------------------------- training


@dataclass
class FaceTrainConfig:
    """``knnlab train features --data CelebA6000``."""

    steps: int = 1600  # optimisation steps (batch 64: 21 epochs of the 4 800 train faces)
    batch_size: int = 64
    lr: float = 2e-3  # AdamW peak learning rate (cosine to 0 after a short warm-up)
    weight_decay: float = 5e-4
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    shift: int = 4  # random translation of up to ± this many pixels (zero padding)
    seed: int = 0
    checkpoint_every: int = 500
    width: int = 24  # FaceFeatureConfig.width
    feature_dim: int = 256  # FaceFeatureConfig.feature_dim

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "width", "feature_dim"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 1")
        if not self.lr > 0:
            raise InputError(f"--lr {self.lr}: must be positive")


class _Faces(torch.utils.data.Dataset):
    """Map-style view of ``uint8 (N, 3, 64, 64)`` faces and labels (item ``i`` is sample ``i``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def augment(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Random horizontal flips and ``±shift`` px translations (zero fill) of ``x (B, C, H, W)``,
    drawn from torch's global generator (seeded and restored by the training loop)."""
    b, _, h, w = x.shape
    flip = torch.rand(b) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    if shift > 0:
        pad = F.pad(x, (shift, shift, shift, shift))
        dy, dx = torch.randint(0, 2 * shift + 1, (2, b)).tolist()
        x = torch.stack([pad[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    return x


@torch.no_grad()
def identity_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 200
) -> float:
    """Top-1 accuracy on ``uint8 (N, 3, 64, 64)`` faces ``x`` with labels ``y``."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    for i in range(0, len(x), batch):
        logits = model(x[i : i + batch].to(device).float() / 255.0)
        hits += int((logits.argmax(1).cpu() == y[i : i + batch]).sum())
    model.train(was)
    return hits / len(x)


def train_face_features(
    cfg: FaceTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: str | torch.device = "cpu",
    root: str | Path | None = None,
) -> dict[str, Any]:
    """Train on the train split, save ``out_dir/model`` (``save_pretrained``), and return (and
    write to ``out_dir/summary.json``) the held-out identity accuracy and the times."""
    from knnlab.io_utils import atomic_write_json
    from knnlab.train import TrainConfig, Trainer, seed_everything

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    x_tr, y_tr = load_celeba_faces(("train_dataset",), root)
    x_te, y_te = load_celeba_faces(("validation_dataset", "test_dataset"), root)
    load_seconds = time.perf_counter() - t0
    tcfg = TrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        optimizer="adamw",
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        schedule="cosine",
        warmup_steps=cfg.warmup_steps,
        log_every=max(1, min(50, cfg.steps // 20 or 1)),
        eval_every=max(1, cfg.steps // 4),
        checkpoint_every=cfg.checkpoint_every,
        out_dir=out_dir,
        device=str(device),
        tensorboard=False,
        extra={"face_features": asdict(cfg)},
    )
    seed_everything(cfg.seed)  # the initial weights: torch's own start-up seed is random
    net = FaceIdentityNet(FaceFeatureConfig(width=cfg.width, feature_dim=cfg.feature_dim))

    def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
        xb, yb = batch
        xb = augment(xb.float() / 255.0, cfg.shift)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
        with torch.no_grad():
            acc = (logits.argmax(1) == yb).float().mean()
        return loss, {"accuracy": acc}

    def eval_fn(model: nn.Module) -> dict[str, Any]:
        return {"heldout_accuracy": identity_accuracy(model, x_te, y_te)}

    trainer = Trainer(net, tcfg, loss_fn, _Faces(x_tr, y_tr), eval_fn=eval_fn)
    result = trainer.fit(resume=resume)
    model: Any = trainer.model
    model.eval()
    model.save_pretrained(out_dir / "model")
    summary: dict[str, Any] = {
        "features": FACE_FEATURES_LABEL,
        "config": asdict(cfg),
        "steps": result.step,
        "train_seconds": round(trainer.elapsed, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "load_seconds": round(load_seconds, 1),
        "train_images": len(x_tr),
        "heldout_images": len(x_te),
        "heldout_accuracy": identity_accuracy(model, x_te, y_te),
        "train_accuracy": identity_accuracy(model, x_tr, y_tr),
        "model_dir": str(out_dir / "model"),
        "sha256": sha256_file(out_dir / "model" / WEIGHTS_NAME),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
