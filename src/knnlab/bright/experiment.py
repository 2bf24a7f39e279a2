"""``knnlab experiment bright``: BRIGHT vs VQ vs RQ vs KL at equal code size on MNIST and CelebA 64².

Every row trains with the same loop, loss (20·MSE + the method's own regulariser), optimiser
(Adam 2e-3, betas (0, 0.99)), batch, seed and number of steps, then is scored on the held-out split
(:func:`~knnlab.bright.evaluate.evaluate_autoencoder`). The table, a figure of reconstructions side
by side and a figure of grid vs codebook usage go through :mod:`knnlab.results`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from knnlab.bright.data import load_image_set
from knnlab.bright.evaluate import evaluate_autoencoder
from knnlab.bright.training import BrightTrainConfig, load_autoencoder, train_autoencoder
from knnlab.errors import InputError
from knnlab.results import ExperimentResult

__all__ = [
    "MNIST_FEATURES_LABEL",
    "PRESETS",
    "BrightExperimentConfig",
    "feature_network",
    "run_experiment",
]

log = logging.getLogger(__name__)

#: the BRIGHT config (and the baselines' code size) of each data set of the experiments
PRESETS = {"MNIST": "tiny", "CelebA6000": "celeba64"}
MNIST_FEATURES_LABEL = "MNIST classifier (in-project, 128-d)"
METHODS = ("bright", "vq", "rq", "kl")


@dataclass
class BrightExperimentConfig:
    """The reconstruction table. Budgets are per row (every method of a data set gets the same)."""

    datasets: tuple[str, ...] = ("MNIST", "CelebA6000")
    methods: tuple[str, ...] = METHODS
    # per data set: optimisation steps, batch size, training images (None: all), held-out images
    steps: dict[str, int] = field(default_factory=lambda: {"MNIST": 600, "CelebA6000": 600})
    batch_size: dict[str, int] = field(default_factory=lambda: {"MNIST": 16, "CelebA6000": 16})
    train_limit: dict[str, int | None] = field(
        default_factory=lambda: {"MNIST": None, "CelebA6000": None}
    )
    eval_limit: dict[str, int] = field(default_factory=lambda: {"MNIST": 500, "CelebA6000": 600})
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        bad = [d for d in self.datasets if d not in PRESETS]
        if bad:
            raise InputError(f"--data {bad}: the experiment runs {sorted(PRESETS)}")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise InputError(f"--methods {bad}: choose from {', '.join(METHODS)}")


def feature_network(data: str, device: str):
    """The in-project feature network of ``data``: the MNIST classifier, or the CelebA-identity
    network for faces."""
    from knnlab.metrics.features import get_extractor

    if data == "MNIST":
        return get_extractor("mnist", device), MNIST_FEATURES_LABEL
    if data == "CelebA6000":
        from knnlab.metrics.features.faces import FACE_FEATURES_LABEL

        return get_extractor("faces", device), FACE_FEATURES_LABEL
    return None, None


def _recon_figure(per_data: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]]):
    import matplotlib.pyplot as plt

    n_show = 8
    rows = sum(1 + len(r) for _, r in per_data.values())
    fig, axes = plt.subplots(rows, 1, figsize=(n_show * 0.9, rows * 0.95))
    axes = np.atleast_1d(axes)
    i = 0
    for data, (real, recons) in per_data.items():
        for label, imgs in [("original", real), *recons.items()]:
            strip = torch.cat(list(imgs[:n_show]), dim=2)  # (C, S, n·S)
            arr = strip.permute(1, 2, 0).clamp(0, 1).numpy()
            ax = axes[i]
            ax.imshow(arr.squeeze(-1) if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(f"{data}\n{label}" if label == "original" else label, rotation=0,
                          ha="right", va="center", fontsize=8)  # fmt: skip
            i += 1
    fig.tight_layout()
    return fig


def _usage_figure(usage: dict[str, dict[str, Any]]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(usage), figsize=(5 * len(usage), 3.2), squeeze=False)
    for ax, (data, u) in zip(axes[0], usage.items()):
        if "bright" in u:
            lv = np.array(u["bright"]) * 100
            ax.plot(np.arange(len(lv)), lv, "o-", label="BRIGHT: table entries used (per level)")
        for m, marker in (("vq", "s"), ("rq", "^")):
            if m in u:
                cb = u[m]
                alive = (1 - np.array(cb["dead_share"])) * 100
                ax.plot(np.arange(len(alive)), alive, marker + "--",
                        label=f"{m.upper()}: codes used (per codebook)")  # fmt: skip
        ax.set_ylim(0, 105)
        ax.set_xlabel("grid level / codebook index")
        ax.set_ylabel("% used on the held-out split")
        ax.set_title(data)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run_experiment(cfg: BrightExperimentConfig, work_dir: str | Path) -> ExperimentResult:
    """Train and score every (data set, method) row; models and logs go to ``work_dir``."""
    work_dir = Path(work_dir)
    res = ExperimentResult(
        "bright",
        "BRIGHT vs VQ / RQ / KL autoencoders at equal code size",
        summary=(
            "Reconstruction on held-out images after the same short training budget for every "
            "method (reconstruction loss only: no perceptual term without VGG weights, no GAN)."
        ),
    )
    res.protocol.update(asdict(cfg))
    rows: list[dict[str, Any]] = []
    figures: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}
    usage: dict[str, dict[str, Any]] = {}
    for data in cfg.datasets:
        preset = PRESETS[data]
        steps = cfg.steps[data]
        from knnlab.bright.autoencoder import bright_config

        bc = bright_config(preset)
        train = load_image_set(data, "train", size=bc.image_size, channels=bc.image_channels,
                               limit=cfg.train_limit.get(data))  # fmt: skip
        test = load_image_set(data, "test", size=bc.image_size, channels=bc.image_channels,
                              limit=cfg.eval_limit[data])  # fmt: skip
        feat_net, feat_name = feature_network(data, cfg.device)
        recons: dict[str, torch.Tensor] = {}
        usage[data] = {}
        for method in cfg.methods:
            tc = BrightTrainConfig(
                data=data, config=preset, baseline=None if method == "bright" else method,
                steps=steps, batch_size=cfg.batch_size[data], seed=cfg.seed,
                checkpoint_every=max(steps, 1),
            )  # fmt: skip
            run_dir = work_dir / f"{data}-{method}"
            log.info("training %s on %s for %d steps", method, data, steps)
            summary = train_autoencoder(tc, run_dir, device=cfg.device, train_images=train)
            model = load_autoencoder(run_dir / "model")
            t0 = time.perf_counter()
            ev = evaluate_autoencoder(model, test, feature_net=feat_net, feature_name=feat_name,
                                      device=cfg.device)  # fmt: skip
            recons[method] = ev.pop("_recon")[:8]
            if "grid_usage_per_level" in ev:
                usage[data]["bright"] = ev["grid_usage_per_level"]
            if "codebook" in ev:
                usage[data][method] = ev["codebook"]
            h, w, d = summary["code_shape"]
            rows.append({
                "data": data, "method": method.upper() if method != "bright" else "BRIGHT",
                "code size": f"{h}×{w}×{d}", "steps": steps,
                "train s": summary["train_seconds"], "PSNR": ev["psnr"], "SSIM": ev["ssim"],
                "rFID": ev.get("rfid"), "precision": ev.get("precision"),
                "recall": ev.get("recall"), "usage": ev["usage_summary"],
                "decoder params (M)": ev["decoder_params"] / 1e6,
                "grid params (M)": ev["grid_params"] / 1e6,
                "decoder GFLOPs": ev["decoder_gflops"],
            })  # fmt: skip
            res.timings[f"train_{data}_{method}_s"] = summary["train_seconds"]
            res.timings[f"eval_{data}_{method}_s"] = round(time.perf_counter() - t0, 1)
            res.data[f"{data}-{method}"] = {k: v for k, v in ev.items() if not k.startswith("_")}
        figures[data] = (test[:8], recons)
    res.add_table(
        "reconstruction",
        rows,
        caption=(
            "Held-out reconstruction at equal code size (h×w×depth entries: BRIGHT key codes and "
            "KL latents are floats, VQ heads / RQ stages are indices of 256-entry codebooks). "
            "rFID / precision / recall in the MNIST-classifier feature space on MNIST and in the "
            "CelebA-identity feature space (knnlab) on faces."
        ),
        notes=[
            f"Held-out: MNIST test split (first {cfg.eval_limit.get('MNIST')}), CelebA6000 "
            f"validation split (first {cfg.eval_limit.get('CelebA6000')}; centre crop 178² → 64², "
            "antialiased bicubic). Budgets per row: steps "
            f"{cfg.steps}, batch {cfg.batch_size}, training images {cfg.train_limit}.",
            "Decoder FLOPs per image from torch.utils.flop_counter; BRIGHT's include retrieval.",
        ],
    )
    res.add_figure(_recon_figure(figures), "reconstructions.png",
                   "Held-out originals and reconstructions (rows: methods)")  # fmt: skip
    res.add_figure(_usage_figure(usage), "usage.png",
                   "Share of BRIGHT's hash-table entries used per level vs share of VQ/RQ codes "
                   "used per codebook, on the held-out split")  # fmt: skip
    return res
