"""``knnlab experiment real-noise``: N³Net-real and DnCNN-real trained at equal budget, then measured
against blind baselines on real photographs (PolyU, CC15) and synthetic Poisson–Gaussian noise (BSD68).

Steps: train both models with :func:`~knnlab.n3.real.training.train_real_denoiser` (same data, noise
model, inputs, steps, batch and seed; runs in ``runs_dir``, resumed if there), evaluate every method
with :func:`~knnlab.n3.real.evaluate.evaluate_real` (each method's result kept in ``runs_dir/eval`` and reused
while its weights and the protocol stay the same), and return an
:class:`~knnlab.results.ExperimentResult` (one table per data set, a per-image table, a PolyU crop).
``ship=True`` copies the trained N³Net-real into ``knnlab/assets/n3net_real/``, which is how the
shipped ``n3net-real`` is made.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from knnlab.errors import InputError
from knnlab.results import ExperimentResult

__all__ = ["RealNoiseExperimentConfig", "crop_figure", "run_real_noise"]

log = logging.getLogger(__name__)


@dataclass
class RealNoiseExperimentConfig:
    """Budget and protocol of the real-noise experiment (defaults: what ran for the README table)."""

    preset: str = "cpu"  # model size of both networks (knnlab.n3.real.models)
    steps: int = 60  # optimiser steps of each model (equal budget)
    batch_size: int = 8
    seed: int = 0
    runs_dir: str = "runs/real-noise"  # training runs (resumed when present)
    polyu_limit: int | None = 4  # evenly spaced PolyU images (None: all 100)
    cc15_limit: int | None = 3  # evenly spaced CC15 images (None: all 15)
    bsd68_limit: int | None = 2  # evenly spaced BSD68 images for the synthetic rows
    crop: int | None = 256  # score the centre crop×crop of every image (None: whole images)
    nlf_pairs: tuple[tuple[float, float], ...] = ((0.01, 1e-4), (0.001, 1e-5))  # synthetic (a, b)
    baselines: tuple[str, ...] = ("bm3d", "n3net-official")
    ship: bool = False  # copy the trained N³Net-real to knnlab/assets/n3net_real
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("polyu_limit", "cc15_limit", "bsd68_limit"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise InputError(f"--{name.replace('_', '-')} {v}: must be at least 1")


def eval_specs(cfg: RealNoiseExperimentConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """``(caption key, table name, evaluate_real keyword arguments)`` of every evaluation."""
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("PolyU", "PolyU", {"dataset": "PolyU", "limit": cfg.polyu_limit, "crop": cfg.crop}),
        ("CC15", "CC15", {"dataset": "CC15", "limit": cfg.cc15_limit, "crop": cfg.crop}),
    ]
    for a, b in cfg.nlf_pairs:
        spec = {
            "dataset": "BSD68",
            "nlf": (a, b),
            "limit": cfg.bsd68_limit,
            "crop": cfg.crop,
            "seed": cfg.seed,
        }
        specs.append((f"BSD68 a={a:g} b={b:g}", f"BSD68_a{a:g}_b{b:g}", spec))
    return specs


def evaluate_cached(
    method: str, spec: dict[str, Any], cache_dir: Path, *, oracle: bool, device
) -> dict[str, Any]:
    """:func:`~knnlab.n3.real.evaluate.evaluate_real` of one method, kept in ``cache_dir`` and reused
    when the method, the model weights (sha256) and the protocol are the same."""
    import json

    from knnlab.hub import sha256_file
    from knnlab.io_utils import atomic_write_json, json_safe
    from knnlab.n3.real.evaluate import evaluate_real

    weights = Path(method) / "model.safetensors"
    key = json_safe(
        {
            "method": method,
            "oracle": oracle,
            **spec,
            "weights_sha256": sha256_file(weights) if weights.is_file() else None,
        }
    )
    slug = "".join(ch if ch.isalnum() else "_" for ch in method)[-60:]
    path = Path(cache_dir) / f"{slug}.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                return saved["result"]
        except (OSError, json.JSONDecodeError):
            pass
    r = evaluate_real([method], oracle=[method] if oracle else [], device=device, **spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"key": key, "result": r})
    return r


def crop_figure(panels: list[tuple[str, torch.Tensor]], title: str):
    """A row of RGB/gray crops with captions (a matplotlib Figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.3))
    for ax, (cap, img) in zip(axes, panels):
        arr = img.clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(
            arr if arr.shape[2] == 3 else arr[..., 0],
            cmap=None if arr.shape[2] == 3 else "gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(cap, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def run_real_noise(
    cfg: RealNoiseExperimentConfig, *, device: torch.device | str = "cpu"
) -> ExperimentResult:
    """Train, evaluate and tabulate (see the module docstring)."""
    from knnlab.metrics import psnr
    from knnlab.n3.real.denoise import N3NET_REAL_DIR
    from knnlab.n3.real.evaluate import load_pairs, make_method
    from knnlab.n3.real.training import RealTrainConfig, train_real_denoiser

    res = ExperimentResult(
        "real-noise",
        "N³Net for real camera noise",
        summary=(
            f"N³Net-real and DnCNN-real (inputs: noisy gray, a-map, b-map; preset {cfg.preset!r}) "
            f"trained for {cfg.steps} steps of batch {cfg.batch_size} each on Train400 + T91 with the "
            "released Poisson–Gaussian recipe, against blind BM3D and the published Gaussian N³Net. "
            "Photos are denoised per RGB channel with the noise-level function estimated per channel."
        ),
    )
    res.protocol.update({"config": asdict(cfg), "device": str(device)})
    runs = Path(cfg.runs_dir)
    trained: dict[str, str] = {}
    for model in ("n3net", "dncnn"):
        tc = RealTrainConfig(
            model=model,
            preset=cfg.preset,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
        )
        t0 = time.perf_counter()
        summary = train_real_denoiser(tc, runs / model, resume=True, device=device)
        res.timings[f"train_{model}_s"] = summary["train_seconds"]
        res.timings[f"train_{model}_call_s"] = round(time.perf_counter() - t0, 1)
        res.data[f"train_{model}"] = summary
        trained[model] = str(runs / model / "model")
    methods = ["noisy", trained["n3net"], trained["dncnn"], *cfg.baselines]
    names = {trained["n3net"]: "N³Net-real", trained["dncnn"]: "DnCNN-real"}
    evals: list[tuple[str, str, dict[str, Any]]] = []
    for key, name, spec in eval_specs(cfg):
        t0 = time.perf_counter()
        parts = [
            evaluate_cached(
                m, spec, runs / "eval" / name, oracle=m in names and "nlf" in spec, device=device
            )
            for m in methods
        ]
        for m, part in zip(methods, parts, strict=True):
            for e in part["results"]:  # a folder's label is its name ("model"): say which
                if m in names:
                    e["model"] = names[m] + e["model"][len(Path(m).name) :]
        r = {**parts[0], "results": [e for p in parts for e in p["results"]]}
        evals.append((key, name, r))
        res.timings[f"eval_{name}_s"] = round(time.perf_counter() - t0, 1)
        res.timings[f"eval_{name}_methods_s"] = round(sum(e["seconds"] for e in r["results"]), 1)

    per_image: list[dict[str, Any]] = []
    for key, name, r in evals:
        rows = [
            {
                "method": e["model"],
                "PSNR": round(e["psnr"], 3),
                "SSIM": round(e["ssim"], 4),
                "seconds": e["seconds"],
            }
            for e in r["results"]
        ]
        res.add_table(
            name,
            rows,
            ["method", "PSNR", "SSIM", "seconds"],
            caption=f"{key}: mean over {r['num_images']} images (PSNR dB, SSIM; seconds in all)",
            notes=[f"images: {', '.join(r['images_used'])}"],
        )
        for e in r["results"]:
            for row in e["images"]:
                per_image.append({"set": key, "method": e["model"], **row})
        res.data[name] = r
    res.add_table(
        "per_image",
        per_image,
        ["set", "method", "image", "psnr", "ssim", "seconds"],
        caption="PSNR and SSIM of every image",
    )

    # a PolyU crop: noisy, BM3D, N³Net-real, ground truth
    _, pairs = load_pairs("PolyU", 1)
    name, noisy, clean = pairs[0]
    panels = [("noisy", noisy)]
    for m, lab in (("bm3d", "BM3D"), (trained["n3net"], "N³Net-real")):
        _, fn = make_method(m, device=device, nlf_scale=2)
        out = fn(noisy, None).clamp(0, 1)
        panels.append((f"{lab} {float(psnr(out, clean)):.2f} dB", out))
    panels.append(("ground truth (mean)", clean))
    panels[0] = (f"noisy {float(psnr(noisy, clean)):.2f} dB", noisy)
    sl = (slice(None), slice(128, 384), slice(128, 384))
    res.add_figure(
        crop_figure(
            [(c, im[sl]) for c, im in panels],
            f"PolyU {name}: centre 256×256 shown, PSNR of the whole 512×512 image",
        ),
        "polyu_crop.png",
        caption=f"PolyU {name}: noisy, BM3D, N³Net-real, ground truth",
    )

    if cfg.ship:
        if N3NET_REAL_DIR.exists():
            shutil.rmtree(N3NET_REAL_DIR)
        shutil.copytree(trained["n3net"], N3NET_REAL_DIR)
        res.protocol["shipped"] = str(N3NET_REAL_DIR)
    return res
