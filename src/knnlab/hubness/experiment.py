"""``knnlab experiment hubness``: the table of Liang et al. (ICML 2022, "Exploring and Exploiting
Hubness Priors for High-Quality GAN Latent Sampling") on any generator, by default the built-in MNIST
GAN with the in-project MNIST classifier as feature network.

Rows: Hubs(t) for a few k-occurrence thresholds t, Truncated(ψ) for ψ in (0.7, 0.3), and Random, each
with the same number of samples. Columns: FID, precision, recall (k = 3), density, coverage (k = 5),
KID and the memorization rate against the training set. Figures: samples sorted by hub value, metric
vs threshold, hub value vs distance to the mean latent, generated samples next to their nearest
training samples, one sample grid per method.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from knnlab.errors import InputError, KnnlabError
from knnlab.hubness.generators import GeneratorAdapter, load_generator

__all__ = [
    "PAPER_RESULTS",
    "HubnessExperimentConfig",
    "collect_hubs",
    "format_table",
    "quick_config",
    "run_experiment",
    "write_outputs",
]

log = logging.getLogger(__name__)

FEATURE_LABEL = {
    "mnist": "MNIST-classifier features",
    "inception": "Inception-v3 features",
    "vgg16": "VGG-16 fc2 features",
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

# Liang et al. 2022, Table 1 (StyleGAN2, FFHQ 1024, Inception/VGG features): for comparing shape.
PAPER_RESULTS: list[dict[str, Any]] = [
    {"method": "Hubs(50)", "fid": 21.96, "precision": 0.890, "recall": 0.324},
    {"method": "Truncated(0.7)", "fid": 25.10, "precision": 0.811, "recall": 0.223},
    {"method": "Truncated(0.3)", "fid": None, "precision": 0.892, "recall": 0.015},
    {"method": "Random", "fid": 35.46, "precision": 0.720, "recall": 0.393},
]


@dataclass
class HubnessExperimentConfig:
    """Settings of one run (defaults: the documented default run)."""

    generator: str = "builtin"  # "builtin", a from_pretrained folder, "module:attr" or a .pkl
    trust_pickle: bool = False  # allow .pkl generators (unpickling runs code from the file)
    n: int = 10_000  # samples per method (same for every row)
    k: int = 5  # neighbourhood size of the k-occurrence
    pool_size: int = 10_000  # latents per hub-search pool
    thresholds: tuple[int, ...] = (10, 15, 20)  # hub thresholds t (k-occurrence >= t)
    psis: tuple[float, ...] = (0.7, 0.3)  # truncation ψ
    space: str = "auto"  # latent space of hub search and truncation: "w", "z" or "auto" (w if any)
    features: str = "mnist"  # feature network: "mnist", "inception" or "vgg16"
    feature_weights: str | None = None  # weights of inception/vgg16 (path or URL)
    n_real: int = 10_000  # real reference samples (MNIST test set)
    n_train: int | None = None  # training images searched for novelty (None: all 60 000)
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
        if self.features not in FEATURE_LABEL:
            raise InputError(f"features={self.features!r}; choose one of {sorted(FEATURE_LABEL)}")


# --------------------------------------------------------------------------------------------
# data and features


def _mnist_images(split: str, n: int | None, seed: int) -> torch.Tensor:
    from knnlab.hubness.train_gan import load_mnist_uint8

    x, _ = load_mnist_uint8(split)
    if n is not None and n < len(x):
        idx = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
        x = x[idx]
    return torch.from_numpy(x).float().div(255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]


def _feature_net(cfg: HubnessExperimentConfig, device: torch.device) -> Any:
    from knnlab.metrics.features import get_extractor

    return get_extractor(cfg.features, device=device, weights=cfg.feature_weights)


def _features(net: Any, images: torch.Tensor, batch_size: int) -> np.ndarray:
    from knnlab.metrics.features import extract_features

    return extract_features(net, images, batch_size=batch_size)


# --------------------------------------------------------------------------------------------
# sampling


def collect_hubs(
    sampler: Any, thresholds: tuple[int, ...] | list[int], n: int, max_pools: int = 400
) -> dict[int, dict[str, Any]]:
    """For each threshold t, the first ``n`` pool members with k-occurrence ``>= t`` over the pools
    ``sampler.draw_pool()`` yields — what ``HubSampler(threshold=t)`` with the same random stream
    returns — computing each pool's k-occurrence once for all thresholds.

    Returns ``{t: {"latents", "z", "hub_values", "acceptance_rate", "pools_drawn"}}``.
    """
    ts = sorted({int(t) for t in thresholds})
    got: dict[int, dict[str, Any]] = {
        t: {"latents": [], "z": [], "hub_values": [], "count": 0, "found": 0, "candidates": 0}
        for t in ts
    }
    pools = 0
    while any(got[t]["count"] < n for t in ts):
        if pools >= max_pools:
            short = {t: got[t]["count"] for t in ts if got[t]["count"] < n}
            raise KnnlabError(
                f"hub sampling: after {pools} pools still short of n={n} for thresholds {short}; "
                "lower the thresholds, lower --n or raise max_pools"
            )
        z, lat, kocc = sampler.draw_pool()
        pools += 1
        for t in ts:
            g = got[t]
            if g["count"] >= n:
                continue
            sel = np.flatnonzero(kocc >= t)
            g["found"] += int(sel.size)
            g["candidates"] += len(kocc)
            take = sel[: n - g["count"]]
            if take.size:
                idx = torch.from_numpy(take).to(lat.device)
                g["latents"].append(lat[idx])
                g["z"].append(z[idx.to(z.device)])
                g["hub_values"].append(kocc[take])
                g["count"] += int(take.size)
            g["pools_drawn"] = g["candidates"] // len(kocc)
    out: dict[int, dict[str, Any]] = {}
    for t in ts:
        g = got[t]
        out[t] = {
            "latents": torch.cat(g["latents"]),
            "z": torch.cat(g["z"]),
            "hub_values": np.concatenate(g["hub_values"]).astype(np.int64),
            "acceptance_rate": g["found"] / g["candidates"],
            "pools_drawn": g["pools_drawn"],
        }
    return out


def _space(cfg: HubnessExperimentConfig, gen: GeneratorAdapter) -> str:
    if cfg.space == "auto":
        return "w" if gen.has_w else "z"
    if cfg.space == "w" and not gen.has_w:
        raise InputError(f"space='w' but {gen.name} has no mapping/synthesis split; use space='z'")
    return cfg.space


# --------------------------------------------------------------------------------------------
# the run


def run_experiment(
    config: HubnessExperimentConfig | None = None,
    generator: GeneratorAdapter | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the experiment; returns ``(results, artefacts)``: the JSON-able results and the
    pictures (matplotlib figures and image tensors) for :func:`write_outputs`."""
    from knnlab.devices import resolve_device
    from knnlab.hubness import HubSampler, RandomSampler, TruncationSampler
    from knnlab.metrics import density_coverage, fid, memorization_rate, precision_recall

    cfg = config or HubnessExperimentConfig()
    cfg.validate()
    t_start = time.perf_counter()
    dev = resolve_device(cfg.device)
    gen = generator or load_generator(cfg.generator, trust_pickle=cfg.trust_pickle, device=dev)
    space = _space(cfg, gen)
    mapping = gen.mapping if space == "w" else None
    net = _feature_net(cfg, dev)
    feat_label = FEATURE_LABEL[cfg.features]
    timings: dict[str, float] = {}

    # real reference (test split) and training set (novelty)
    t0 = time.perf_counter()
    real_images = _mnist_images("test", cfg.n_real, cfg.seed)
    real = _features(net, real_images, cfg.batch_size)
    train_images = _mnist_images("train", cfg.n_train, cfg.seed)
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
                "kind": "hubs",
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
        methods.append(
            {"method": f"Truncated({psi:g})", "kind": "truncated", "psi": psi, "latents": lat}
        )
        if w_mean is None and space == "w":
            w_mean = ts.w_mean
    rs = RandomSampler(gen.latent_dim, space=space, mapping=mapping, seed=cfg.seed + 2, device=dev)
    methods.append({"method": "Random", "kind": "random", "latents": rs.sample(cfg.n)})
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

    rho = float(spearmanr(pool_kocc, dist).statistic)
    z_rho = float(spearmanr(pool_kocc, pool_z.norm(dim=1).cpu().numpy()).statistic)
    bands = _sorted_bands(pool_kocc, order)
    band_images = [
        gen.decode(pool_lat[torch.from_numpy(idx).to(pool_lat.device)], space, cfg.batch_size)
        for _, idx in bands
    ]
    from knnlab.hubness.measures import hubness_stats

    stats = hubness_stats(pool_kocc, cfg.k)
    timings["figures_data"] = time.perf_counter() - t0

    results: dict[str, Any] = {
        "protocol": f"hubness_{cfg.features}_n{cfg.n}_k{cfg.k}_pool{cfg.pool_size}",
        "features": feat_label,
        "generator": gen.name,
        "space": space,
        "latent_dim": gen.latent_dim,
        "config": {**asdict(cfg), "thresholds": list(cfg.thresholds), "psis": list(cfg.psis)},
        "table": rows,
        "pool_hubness": {k: _plain(v) for k, v in stats.items()} if isinstance(stats, dict) else {},
        "hub_value_vs_distance": {
            "spearman_rho": rho,
            "spearman_rho_z_norm": z_rho,
            "space": space,
            "centre": "w_avg" if space == "w" else "origin",
        },
        "paper": PAPER_RESULTS,
        "shape_vs_paper": shape_checks(rows),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    results["seconds"]["total"] = round(time.perf_counter() - t_start, 2)
    artefacts = {
        "grids": grids,
        "bands": [(label, imgs) for (label, _), imgs in zip(bands, band_images)],
        "scatter": (pool_kocc, dist, pool_z.norm(dim=1).cpu().numpy()),
        "novelty": novelty_inputs,
        "train_images": train_images,
        "train_feats": train_feats,
    }
    return results, artefacts


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


def _sorted_bands(
    kocc: np.ndarray, order: np.ndarray, per_band: int = 12
) -> list[tuple[str, np.ndarray]]:
    """Pool members at 6 ranks of hub value, highest first: (label, indices)."""
    n = len(order)
    starts = [0, n // 100, n // 10, n // 2, n - n // 10, n - per_band]
    names = ["top hubs", "top 1%", "top 10%", "median", "bottom 10%", "anti-hubs"]
    bands = []
    for name, s in zip(names, starts):
        s = min(max(s, 0), max(n - per_band, 0))
        idx = order[s : s + per_band]
        lo, hi = int(kocc[idx].min()), int(kocc[idx].max())
        bands.append((f"{name}: k-occ {hi}..{lo}" if hi != lo else f"{name}: k-occ {hi}", idx))
    return bands


def shape_checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Does the table have the paper's shape? Orderings that hold in Liang et al. Table 1."""
    by = {r["method"]: r for r in rows}
    hub_rows = [r for r in rows if r["method"].startswith("Hubs(")]
    out: dict[str, Any] = {}
    rnd = by.get("Random")
    t07, t03 = by.get("Truncated(0.7)"), by.get("Truncated(0.3)")
    if hub_rows and rnd:
        best = min(hub_rows, key=lambda r: r["fid"])
        out["best_hubs_fid_below_random"] = bool(best["fid"] < rnd["fid"])
        out["all_hubs_precision_above_random"] = all(
            r["precision"] > rnd["precision"] for r in hub_rows
        )
    if hub_rows and t07:
        out["best_hubs_fid_below_truncated_0.7"] = bool(
            min(r["fid"] for r in hub_rows) < t07["fid"]
        )
        out["some_hubs_recall_above_truncated_0.7"] = any(
            r["recall"] > t07["recall"] for r in hub_rows
        )
    if t07 and t03:
        out["truncation_0.3_recall_collapses"] = bool(t03["recall"] < t07["recall"])
    return out


# --------------------------------------------------------------------------------------------
# output


_COLUMNS = [
    ("method", "method", "{}"),
    ("acceptance_rate", "accept", "{:.2%}"),
    ("fid", "FID", "{:.3f}"),
    ("kid", "KID", "{:.4f}"),
    ("precision", "P", "{:.3f}"),
    ("recall", "R", "{:.3f}"),
    ("density", "D", "{:.3f}"),
    ("coverage", "C", "{:.3f}"),
    ("memorization_rate", "memorized", "{:.2%}"),
    ("class_entropy", "class H", "{:.3f}"),
]


def format_table(results: dict[str, Any]) -> str:
    """The results table as aligned text (the CLI prints it)."""
    header = [c[1] for c in _COLUMNS]
    lines = [
        [fmt.format(r[key]) if key in r else "-" for key, _, fmt in _COLUMNS]
        for r in results["table"]
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt_line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    n = results["table"][0]["n"]
    title = (
        f"Hubness experiment ({results['generator']}, {results['space'].upper()} space, "
        f"k={results['config']['k']}, pool {results['config']['pool_size']}, n={n} per row); "
        f"FID/KID/P/R/D/C on {results['features']}"
    )
    return "\n".join([title, fmt_line.format(*header)] + [fmt_line.format(*line) for line in lines])


def _figures(results: dict[str, Any], artefacts: dict[str, Any]) -> dict[str, Any]:
    """matplotlib figures by file stem."""
    from matplotlib.figure import Figure

    from knnlab.hubness.train_gan import image_grid

    figs: dict[str, Any] = {}
    feat = results["features"]
    rows = results["table"]

    # samples sorted by hub value
    bands = artefacts["bands"]
    fig = Figure(figsize=(10, 1.1 * len(bands) + 0.5))
    axes = fig.subplots(len(bands), 1, squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], bands):
        grid = image_grid(imgs, nrow=len(imgs), pad=1, value=1.0)
        ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=8, loc="left")
        ax.axis("off")
    fig.suptitle(
        "Samples of one pool sorted by hub value (k-occurrence), highest first", fontsize=10
    )
    figs["samples_by_hub_value"] = fig

    # metric vs threshold
    hub_rows = sorted(
        [r for r in rows if r["method"].startswith("Hubs(")], key=lambda r: r["threshold"]
    )
    others = [r for r in rows if not r["method"].startswith("Hubs(")]
    metrics = [
        ("fid", f"FID ({feat})"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("density", "density"),
        ("coverage", "coverage"),
    ]
    fig = Figure(figsize=(15, 3.2))
    axes = fig.subplots(1, len(metrics))
    ts = [r["threshold"] for r in hub_rows]
    styles = ["--", ":", "-."]
    for ax, (key, label) in zip(axes, metrics):
        ax.plot(ts, [r[key] for r in hub_rows], "o-", color="tab:red", label="Hubs(t)")
        for j, r in enumerate(others):
            ax.axhline(r[key], ls=styles[j % 3], color=f"C{j}", label=r["method"])
        ax.set_xlabel("hub threshold t")
        ax.set_title(label, fontsize=9)
        if key == "fid":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("Metrics vs hub threshold (lines: baselines)", fontsize=10)
    fig.tight_layout()
    figs["metrics_vs_threshold"] = fig

    # hub value vs distance to the mean latent
    kocc, dist, znorm = artefacts["scatter"]
    hv = results["hub_value_vs_distance"]
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    centre = "mean w" if hv["space"] == "w" else "the origin"
    ax1.scatter(dist, kocc, s=3, alpha=0.3)
    ax1.set_xlabel(f"distance to {centre} ({hv['space'].upper()} space)")
    ax1.set_ylabel("hub value (k-occurrence)")
    ax1.set_title(f"Spearman rho = {hv['spearman_rho']:.3f}", fontsize=9)
    ax2.scatter(znorm, kocc, s=3, alpha=0.3, color="tab:green")
    ax2.set_xlabel("|z|")
    ax2.set_title(f"Spearman rho = {hv['spearman_rho_z_norm']:.3f}", fontsize=9)
    for t in sorted({r["threshold"] for r in hub_rows}):
        ax1.axhline(t, color="tab:red", lw=0.6, ls="--")
    fig.suptitle("Hub value vs distance to the mean latent (one pool)", fontsize=10)
    fig.tight_layout()
    figs["hub_value_vs_distance"] = fig

    # novelty: generated (first hub row) next to nearest training samples
    from knnlab.metrics import novelty_figure_data, plot_novelty

    first = rows[0]["method"]
    fake, images = artefacts["novelty"][first]
    data = novelty_figure_data(
        fake, artefacts["train_feats"], images, artefacts["train_images"], n_show=6, k=4
    )
    figs["novelty"] = plot_novelty(
        data,
        value_range=(0.0, 1.0),
        title=f"{first}: generated samples closest to the training set, and their nearest "
        f"training samples ({feat})",
    )
    return figs


def write_outputs(
    results: dict[str, Any], artefacts: dict[str, Any], out: str | Path
) -> dict[str, Path]:
    """Write ``results.json``, ``report.html``, figures and sample grids (PNG) into ``out``,
    atomically (all files appear together)."""
    from knnlab.hubness.train_gan import save_grid_png
    from knnlab.io_utils import atomic_dir
    from knnlab.report import Report

    figs = _figures(results, artefacts)
    report = Report("knnlab: hubness priors for latent sampling")
    add_report_section(report, results, artefacts, figs)
    report.results["hubness"] = results
    out = Path(out)
    written: dict[str, Path] = {}
    with atomic_dir(out) as tmp:
        for stem, fig in figs.items():
            fig.savefig(tmp / f"{stem}.png", dpi=110, bbox_inches="tight")
            written[stem] = out / f"{stem}.png"
        for method, imgs in artefacts["grids"].items():
            stem = "samples_" + method.lower().replace("(", "_").replace(")", "").replace(".", "")
            save_grid_png(imgs, tmp / f"{stem}.png", nrow=8, scale=2)
            written[stem] = out / f"{stem}.png"
        report.write(tmp)
        written["report"] = out / "report.html"
        written["results"] = out / "results.json"
    return written


def add_report_section(
    report: Any,
    results: dict[str, Any],
    artefacts: dict[str, Any],
    figs: dict[str, Any] | None = None,
    *,
    title: str = "Hubness priors for latent sampling",
    compact: bool = False,
) -> None:
    """Add the experiment's table, paper comparison and figures to a :class:`knnlab.report.Report`."""
    feat = results["features"]
    cfg = results["config"]
    n = results["table"][0]["n"]
    sec = report.section(
        title,
        f"Generator: {results['generator']} (latent dim {results['latent_dim']}); hubs searched "
        f"and truncation applied in {results['space'].upper()} space; k = {cfg['k']}, pools of "
        f"{cfg['pool_size']}; {n} samples per row; real reference: {cfg['n_real']} MNIST test "
        f"images; metrics on {feat} (not comparable with Inception-based numbers).",
    )
    cols = [
        "method",
        "acceptance_rate",
        "fid",
        "kid",
        "precision",
        "recall",
        "density",
        "coverage",
        "memorization_rate",
        "class_entropy",
        "top_class_share",
    ]
    table = [
        {("FID (" + feat + ")" if c == "fid" else c): r.get(c, "") for c in cols}
        for r in results["table"]
    ]
    sec.table(
        table,
        caption=f"FID ({feat}), KID, precision/recall (k={cfg['pr_k']}), density/coverage "
        f"(k={cfg['dc_k']}), memorization rate (ratio test d1 < d2/3 against "
        f"{cfg['n_train'] or 60000} training images); class_entropy: normalised entropy of the "
        "digits the classifier predicts (1 = all ten equally often), top_class_share: share of "
        "the most frequent digit",
    )
    if not compact:
        sec.table(
            results["paper"],
            caption="Liang et al. 2022, Table 1 (StyleGAN2 on FFHQ, Inception/VGG features): "
            "compare the shape (orderings), not the values",
        )
        sec.table(
            [{"check": k, "holds": v} for k, v in results["shape_vs_paper"].items()],
            caption="Orderings of the paper's table, checked on this run",
        )
    figs = figs if figs is not None else _figures(results, artefacts)
    grids = artefacts["grids"]
    pick = [m for m in grids if m.startswith("Hubs(")][:1] + [
        m for m in grids if not m.startswith("Hubs(")
    ]
    from knnlab.hubness.train_gan import image_grid

    sec.images([image_grid(grids[m][:32], nrow=8) for m in pick], captions=pick, width=240)
    keys = ["samples_by_hub_value", "metrics_vs_threshold", "hub_value_vs_distance"]
    if not compact:
        keys.append("novelty")
    for key in keys:
        if key in figs:
            sec.figure(figs[key])
    hv = results["hub_value_vs_distance"]
    sec.text(
        f"Hub value vs distance to the mean latent: Spearman rho = {hv['spearman_rho']:.3f} "
        f"(negative: hubs lie near the centre, the paper's link between hubs and truncation)."
    )
    if results["generator"] == BUILTIN_NAME:
        sec.text(BUILTIN_NOTE)


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
