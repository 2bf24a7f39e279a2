"""``knnlab experiment hubness``: the table of Liang et al. (ICML 2022, "Exploring and Exploiting
Hubness Priors for High-Quality GAN Latent Sampling") on any generator, by default the built-in MNIST
GAN with the in-project MNIST classifier as feature network.

Rows: Hubs(t) for a few k-occurrence thresholds t, Truncated(ψ) for ψ in (0.7, 0.3), and Random, each
with the same number of samples. Columns: FID, precision, recall (k = 3), density, coverage (k = 5),
KID and the memorization rate against the training set.

:func:`run_experiment` computes and returns an :class:`~knnlab.results.ExperimentResult`: the tables
(:mod:`knnlab.hubness.tables`), protocol, timings, machine and figure files
(:mod:`knnlab.hubness.figures`); :func:`knnlab.results.write_experiment` writes it and
:meth:`knnlab.report.Report.add_experiment` renders it. Generators, real images and feature networks
come by name from registries (:data:`knnlab.hubness.generators.GENERATORS`,
:data:`knnlab.hubness.real_images.REAL_IMAGES`, :func:`knnlab.metrics.features.get_extractor`), so a
new domain plugs in without editing this module.

Hubs of all thresholds come from the same sequence of pools (one ``HubSampler`` random stream), so
Hubs(t) collects exactly what ``HubSampler(threshold=t, seed=seed).sample(n)`` would, while every
pool's k-occurrence is computed once. Hub thresholds depend on pool size, k and dimension: the paper
uses k = 5, t = 50 with pools of 10 000 in StyleGAN2's 512-d W; the built-in GAN's W is 64-d, where
hubness is weaker, so its default thresholds are lower (the acceptance rate of each is reported).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError
from knnlab.hubness.generators import GENERATORS, GeneratorAdapter, load_generator
from knnlab.hubness.pools import collect_hubs, sorted_bands
from knnlab.hubness.real_images import (
    REAL_IMAGES,
    RealImages,
    get_real_images,
    match_real_images,
)
from knnlab.hubness.tables import PAPER_RESULTS, format_table, shape_checks
from knnlab.metrics.features.faces import FACE_FEATURES_LABEL
from knnlab.results import ExperimentResult

__all__ = [
    "PAPER_RESULTS",
    "HubnessExperimentConfig",
    "collect_hubs",
    "format_table",
    "quick_config",
    "run_experiment",
    "shape_checks",
]

log = logging.getLogger(__name__)

#: table labels of the feature networks (a network's own ``label`` attribute comes first)
FEATURE_LABEL = {
    "mnist": "MNIST-classifier features",
    "inception": "Inception-v3 features",
    "vgg16": "VGG-16 fc2 features",
    "faces": FACE_FEATURES_LABEL,
}

BUILTIN_NAME = "builtin MNIST GAN"
BUILTIN_NOTE = (
    "About the built-in GAN: its synthesis network is DCGAN-like (BatchNorm + ReLU), not StyleGAN's "
    "modulated convolutions, and its mean w decodes to an almost empty image. Truncation toward "
    "the mean therefore thins and fades the strokes: Truncated(0.3) reaches a high precision with "
    "a collapsed recall and class balance, hence its very large FID. Hubs lie nearer the mean w "
    "than random latents (negative rho above), so they trade recall and digit balance for "
    "precision and density, like a mild truncation."
)


@dataclass
class HubnessExperimentConfig:
    """Settings of one run (defaults: the documented default run)."""

    generator: str = "builtin"  # a registered name (builtin, celeba64), a folder, module:attr, .pkl
    trust_pickle: bool = False  # allow .pkl generators (unpickling runs code from the file)
    n: int = 10_000  # samples per method (same for every row)
    k: int = 5  # neighbourhood size of the k-occurrence
    pool_size: int = 10_000  # latents per hub-search pool
    thresholds: tuple[int, ...] = (10, 15, 20)  # hub thresholds t (k-occurrence >= t)
    psis: tuple[float, ...] = (0.7, 0.3)  # truncation ψ
    space: str = "auto"  # latent space of hub search and truncation: "w", "z" or "auto" (w if any)
    real_images: str = "auto"  # real set (mnist, celeba64); auto: what the generator was trained on
    features: str = "auto"  # feature network by name (mnist, inception, vgg16, faces...); auto:
    #                         the real set's own (mnist for MNIST, faces for CelebA)
    feature_weights: str | None = None  # weights of the feature network (path or URL)
    n_real: int = 10_000  # real reference samples (capped at the set's size)
    n_train: int | None = None  # training images searched for novelty (None: all)
    pr_k: int = 3  # k of precision/recall (Kynkäänniemi et al.)
    dc_k: int = 5  # k of density/coverage (Naeem et al.)
    kid_subsets: int = 50  # random subsets averaged by KID
    n_novelty: int = 2_000  # generated samples per method checked against the training set
    batch_size: int = 500
    seed: int = 0
    device: str = "auto"
    max_pools: int = 400

    def validate(self) -> None:
        if self.n < 10:
            raise InputError(f"n={self.n}: need at least 10 samples per method")
        if not self.thresholds:
            raise InputError("thresholds: give at least one hub threshold")
        if any(t < 0 or t >= self.pool_size for t in self.thresholds):
            raise InputError(
                f"thresholds={list(self.thresholds)}: each must be in [0, pool_size={self.pool_size})"
            )
        if self.space not in ("auto", "z", "w"):
            raise InputError(f"space={self.space!r}; choose auto, z or w")
        if self.real_images != "auto" and self.real_images not in REAL_IMAGES:
            raise InputError(
                f"real_images={self.real_images!r}; choose auto or one of {sorted(REAL_IMAGES)}"
            )
        if not self.features:
            raise InputError("features='': give a feature network name, or 'auto'")


def quick_config(**overrides: Any) -> HubnessExperimentConfig:
    """A run of seconds: 500 samples per row, pools of 2000, 2000 real images."""
    cfg = HubnessExperimentConfig(
        n=500,
        pool_size=2_000,
        n_real=2_000,
        n_train=10_000,
        n_novelty=500,
        kid_subsets=10,
        thresholds=(10, 15, 20),
        max_pools=200,
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def _space(cfg: HubnessExperimentConfig, gen: GeneratorAdapter) -> str:
    if cfg.space == "auto":
        return "w" if gen.has_w else "z"
    if cfg.space == "w" and not gen.has_w:
        raise InputError(f"space='w' but {gen.name} has no mapping/synthesis split; use space='z'")
    return cfg.space


def _real_images(cfg: HubnessExperimentConfig, gen: GeneratorAdapter, named: bool) -> RealImages:
    """The real set of ``cfg.real_images``; for "auto" the named generator's (``named``: it was
    loaded by its registered name), else the one set whose image shape is the generator's."""
    probe = gen.generate(torch.zeros(1, gen.latent_dim))  # (1, C, H, W)
    shape = tuple(probe.shape[1:])
    if cfg.real_images != "auto":
        found: RealImages | None = get_real_images(cfg.real_images)
    elif named and cfg.generator in GENERATORS:
        found = get_real_images(GENERATORS[cfg.generator].real_images)
    else:
        found = match_real_images(shape)
    known = ", ".join(f"{r.name} {_dims(r.shape)}" for r in REAL_IMAGES.values())
    if found is None:
        raise InputError(
            f"generator {cfg.generator!r} makes images of shape {_dims(shape)}, which matches "
            f"no single real image set ({known}); pass --real-images NAME"
        )
    if tuple(found.shape) != shape:
        raise InputError(
            f"real_images={found.name!r} holds {_dims(found.shape)} images but the generator "
            f"makes {_dims(shape)}; choose a matching set ({known})"
        )
    return found


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _feature_net(name: str, weights: str | None, device: torch.device) -> tuple[Any, str]:
    """The feature network ``name`` (through :func:`knnlab.metrics.features.get_extractor`) and
    the label tables give its features."""
    from knnlab.metrics.features import get_extractor

    net = get_extractor(name, device=device, weights=weights)
    label = getattr(net, "label", None)
    return net, label if isinstance(label, str) else FEATURE_LABEL.get(name, f"{name} features")


def _features(net: Any, images: torch.Tensor, batch_size: int) -> np.ndarray:
    from knnlab.metrics.features import extract_features

    return extract_features(net, images, batch_size=batch_size)


def run_experiment(
    config: HubnessExperimentConfig | None = None,
    generator: GeneratorAdapter | None = None,
) -> ExperimentResult:
    """Run the experiment: tables ``main``, ``paper``, ``shape_vs_paper``; figures and sample grids
    as PNG files; the raw numbers in ``data``; see the module docstring."""
    from knnlab.devices import resolve_device
    from knnlab.hubness import HubSampler, RandomSampler, TruncationSampler
    from knnlab.hubness.figures import FigureData, add_figures
    from knnlab.hubness.tables import add_tables
    from knnlab.metrics import density_coverage, fid, memorization_rate, precision_recall

    cfg = config or HubnessExperimentConfig()
    cfg.validate()
    t_start = time.perf_counter()
    dev = resolve_device(cfg.device)
    gen = generator or load_generator(cfg.generator, trust_pickle=cfg.trust_pickle, device=dev)
    space = _space(cfg, gen)
    mapping = gen.mapping if space == "w" else None
    real_set = _real_images(cfg, gen, named=generator is None)
    feat_name = real_set.features if cfg.features == "auto" else cfg.features
    net, feat_label = _feature_net(feat_name, cfg.feature_weights, dev)
    timings: dict[str, float] = {}

    # real reference and training set (novelty)
    t0 = time.perf_counter()
    real_images = real_set.reference(cfg.n_real, cfg.seed)
    real = _features(net, real_images, cfg.batch_size)
    train_images = real_set.training(cfg.n_train, cfg.seed)
    train_feats = _features(net, train_images, cfg.batch_size)
    timings["real_features"] = time.perf_counter() - t0

    def hub_sampler(seed: int) -> HubSampler:
        return HubSampler(
            gen.latent_dim,
            k=cfg.k,
            threshold=min(cfg.thresholds),
            pool_size=cfg.pool_size,
            space=space,
            mapping=mapping,
            seed=seed,
            device=dev,
        )

    # latents of every method
    t0 = time.perf_counter()
    hubs = collect_hubs(hub_sampler(cfg.seed), cfg.thresholds, cfg.n, cfg.max_pools)
    timings["hub_search"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    methods: list[dict[str, Any]] = []
    for t in sorted(hubs, reverse=True):
        h = hubs[t]
        methods.append(
            {
                "method": f"Hubs({t})",
                "threshold": t,
                "latents": h["latents"],
                "acceptance_rate": h["acceptance_rate"],
                "pools_drawn": h["pools_drawn"],
                "hub_value_mean": float(h["hub_values"].mean()),
            }
        )
    w_mean = gen.w_avg if (space == "w" and gen.w_avg is not None) else None
    for psi in cfg.psis:
        ts = TruncationSampler(
            gen.latent_dim,
            psi,
            space=space,
            mapping=mapping,
            seed=cfg.seed + 1,
            device=dev,
            w_mean=w_mean,
        )
        lat = ts.sample(cfg.n)
        methods.append({"method": f"Truncated({psi:g})", "psi": psi, "latents": lat})
        if w_mean is None and space == "w":
            w_mean = ts.w_mean
    rs = RandomSampler(gen.latent_dim, space=space, mapping=mapping, seed=cfg.seed + 2, device=dev)
    methods.append({"method": "Random", "latents": rs.sample(cfg.n)})
    timings["baseline_sampling"] = time.perf_counter() - t0

    # images, features, metrics
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    grids: dict[str, torch.Tensor] = {}
    novelty_inputs: dict[str, tuple[np.ndarray, torch.Tensor]] = {}
    for m in methods:
        images = gen.decode(m["latents"], space, cfg.batch_size)  # (n, C, H, W) in [0, 1]
        fake = _features(net, images, cfg.batch_size)
        p, r = precision_recall(real, fake, k=cfg.pr_k)
        d, c = density_coverage(real, fake, k=cfg.dc_k)
        mem = memorization_rate(fake[: cfg.n_novelty], train_feats)
        row = {
            "method": m["method"],
            "n": int(images.shape[0]),
            "acceptance_rate": m.get("acceptance_rate", 1.0),
            "fid": fid(real, fake),
            "kid": _kid(real, fake, cfg),
            "precision": p,
            "recall": r,
            "density": d,
            "coverage": c,
            "memorization_rate": mem["rate"],
            "median_nn_distance": mem["median_d1"],
        }
        row.update(_class_balance(net, fake))
        for key in ("threshold", "psi", "pools_drawn", "hub_value_mean"):
            if key in m:
                row[key] = m[key]
        rows.append(row)
        grids[m["method"]] = images[:64].clone()
        novelty_inputs[m["method"]] = (fake[:200], images[:200].clone())
        log.info("hubness %s", {k: v for k, v in row.items() if k != "method"} | {"m": m["method"]})
    timings["generate_and_metrics"] = time.perf_counter() - t0

    # figures' data: one pool with its k-occurrence
    t0 = time.perf_counter()
    pool_z, pool_lat, pool_kocc = hub_sampler(cfg.seed + 100).draw_pool()
    order = np.argsort(-pool_kocc, kind="stable")
    pool_flat = pool_lat.reshape(len(pool_lat), -1).float().cpu()
    centre = (
        w_mean.reshape(-1).float().cpu()
        if space == "w" and w_mean is not None
        else torch.zeros(pool_flat.shape[1])
    )
    dist = (pool_flat - centre).norm(dim=1).numpy()
    from scipy.stats import spearmanr

    from knnlab.hubness.measures import hubness_stats

    znorm = pool_z.norm(dim=1).cpu().numpy()
    rho = float(spearmanr(pool_kocc, dist).statistic)
    z_rho = float(spearmanr(pool_kocc, znorm).statistic)
    bands = [
        (label, gen.decode(pool_lat[torch.from_numpy(idx).to(pool_lat.device)], space))
        for label, idx in sorted_bands(pool_kocc, order)
    ]
    stats = hubness_stats(pool_kocc, cfg.k)
    timings["figures_data"] = time.perf_counter() - t0

    n_real, n_train = len(real_images), len(train_images)
    res = ExperimentResult(
        "hubness",
        f"Hubness priors for latent sampling ({gen.name})",
        summary=f"Generator: {gen.name} (latent dim {gen.latent_dim}); hubs searched and "
        f"truncation applied in {space.upper()} space; k = {cfg.k}, pools of {cfg.pool_size}; "
        f"{cfg.n} samples per row; real reference: {n_real} {real_set.reference_label}; metrics "
        f"on {feat_label}"
        + (" (not comparable with Inception-based numbers)." if feat_name != "inception" else "."),
    )
    res.protocol = {
        "name": f"hubness_{feat_name}_n{cfg.n}_k{cfg.k}_pool{cfg.pool_size}",
        "generator": gen.name,
        "latent_dim": gen.latent_dim,
        "space": space,
        "k": cfg.k,
        "pool_size": cfg.pool_size,
        "thresholds": sorted(cfg.thresholds, reverse=True),
        "psis": list(cfg.psis),
        "n": cfg.n,
        "real_images": real_set.name,
        "reference": f"{n_real} {real_set.reference_label}",
        "training": f"{n_train} {real_set.training_label}",
        "features": feat_label,
        "feature_network": feat_name,
        "precision_recall_k": cfg.pr_k,
        "density_coverage_k": cfg.dc_k,
        "kid_subsets": cfg.kid_subsets,
        "novelty_samples": min(cfg.n_novelty, cfg.n),
        "seed": cfg.seed,
        "device": str(dev),
    }
    res.data = {
        "config": {**asdict(cfg), "thresholds": list(cfg.thresholds), "psis": list(cfg.psis)},
        "pool_hubness": {k: _plain(v) for k, v in stats.items()} if isinstance(stats, dict) else {},
        "hub_value_vs_distance": {
            "spearman_rho": rho,
            "spearman_rho_z_norm": z_rho,
            "space": space,
            "centre": "w_avg" if space == "w" else "origin",
        },
        "shape_vs_paper": shape_checks(rows),
    }
    notes = [
        f"Hub value vs distance to the mean latent: Spearman rho = {rho:.3f} (negative: hubs lie "
        "near the centre, the paper's link between hubs and truncation)."
    ]
    if gen.name == BUILTIN_NAME:
        notes.append(BUILTIN_NOTE)
    add_tables(
        res,
        rows,
        features=feat_label,
        pr_k=cfg.pr_k,
        dc_k=cfg.dc_k,
        training_label=real_set.training_label,
        n_training=n_train,
        notes=notes,
    )
    t0 = time.perf_counter()
    figure_data = FigureData(
        grids=grids,
        bands=bands,
        pool_kocc=pool_kocc,
        pool_dist=dist,
        pool_znorm=znorm,
        novelty=novelty_inputs,
        train_feats=train_feats,
        train_images=train_images,
    )
    add_figures(res, figure_data, rows, feat_label)
    timings["figures"] = time.perf_counter() - t0
    res.timings = {k: round(v, 2) for k, v in timings.items()}
    res.timings["total"] = round(time.perf_counter() - t_start, 2)
    return res


@torch.no_grad()
def _class_balance(net: Any, fake: np.ndarray) -> dict[str, float]:
    """With the MNIST classifier: normalised entropy of the predicted-digit histogram (1 = all ten
    digits equally often, 0 = one digit only) and the share of the most frequent digit."""
    if getattr(net, "name", "") != "mnist-classifier":
        return {}
    head = net.head
    logits = head(torch.from_numpy(fake).to(next(head.parameters()).device))
    counts = np.bincount(logits.argmax(1).cpu().numpy(), minlength=logits.shape[1])
    p = counts / counts.sum()
    nz = p[p > 0]
    return {
        "class_entropy": float(-(nz * np.log(nz)).sum() / np.log(len(p))),
        "top_class_share": float(p.max()),
    }


def _kid(real: np.ndarray, fake: np.ndarray, cfg: HubnessExperimentConfig) -> float:
    from knnlab.metrics import kid

    value = kid(real, fake, subsets=cfg.kid_subsets, subset_size=min(1000, cfg.n), seed=cfg.seed)
    return float(value[0] if isinstance(value, tuple) else value)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v
