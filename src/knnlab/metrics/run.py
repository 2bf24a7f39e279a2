"""``knnlab metrics REAL FAKE``: features of two sets, then the library's metrics on them.

Every number comes from the functions of :mod:`knnlab.metrics` (:func:`~knnlab.metrics.fid`,
:func:`~knnlab.metrics.kid`, :func:`~knnlab.metrics.precision_recall`,
:func:`~knnlab.metrics.density_coverage`, :func:`~knnlab.metrics.memorization_rate`) and
:func:`knnlab.hubness.hubness_stats`; this module only gathers features (streamed and cached by
:mod:`knnlab.metrics.feature_cache`) and records the protocol beside the results.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knnlab.errors import InputError

__all__ = ["MetricsConfig", "run_metrics"]


@dataclass
class MetricsConfig:
    """What to compute and how (the command's options)."""

    features: str = "inception"  # inception | vgg16 | mnist | faces | module:attr
    weights: str | None = None  # weights of the feature network (None: its default)
    fid: bool = False  # with none of fid/kid/prdc/novelty/hubness: fid, kid and prdc
    kid: bool = False
    prdc: bool = False
    novelty: bool = False  # memorization rate of fake w.r.t. real (ratio test d1 < d2 / 3)
    hubness: bool = False  # hubness_stats of each set's k_hub-NN graph
    resize: str = "clean"  # "clean" (clean-fid PIL bicubic) | "legacy" (pytorch-fid bilinear)
    limit: int | None = None  # first N images (or rows) of each set
    batch_size: int = 100  # images per feature batch
    k_pr: int = 3  # precision/recall (Kynkäänniemi et al. 2019)
    k_dc: int = 5  # density/coverage (Naeem et al. 2020)
    k_hub: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0  # KID subsets
    cache_dir: Path | None = None  # None: knnlab.paths.cache_dir() / "features"
    use_cache: bool = True  # module:attr networks are never cached
    device: str = "auto"

    def __post_init__(self) -> None:
        from knnlab.metrics.features.resize import RESIZE_FILTERS

        if self.resize not in RESIZE_FILTERS:
            raise InputError(f"--resize {self.resize!r}: choose {', '.join(RESIZE_FILTERS)}")
        for name in ("batch_size", "k_pr", "k_dc", "k_hub", "kid_subsets"):
            if int(getattr(self, name)) < 1:
                raise InputError(
                    f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1"
                )
        if self.kid_subset_size < 2:
            raise InputError(f"--kid-subset-size {self.kid_subset_size}: must be at least 2")
        if self.limit is not None and self.limit < 2:
            raise InputError(f"--limit {self.limit}: must be at least 2")
        if not (self.fid or self.kid or self.prdc or self.novelty or self.hubness):
            self.fid = self.kid = self.prdc = True


def _weights_tag(cfg: MetricsConfig) -> str:
    """What identifies the network's weights in the cache name."""
    if cfg.weights is not None:
        p = Path(cfg.weights)
        files = [p / "model.safetensors"] if p.is_dir() else [p]
        parts = [str(p.resolve()) if p.exists() else cfg.weights]
        parts += [f"{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.is_file()]
        return "|".join(parts)
    if cfg.features == "faces":
        from knnlab.metrics.features.faces import FACE_WEIGHTS_SHA256

        return FACE_WEIGHTS_SHA256
    if cfg.features == "mnist":
        from knnlab.metrics.features.mnist import BUILTIN_CLASSIFIER_DIR

        f = BUILTIN_CLASSIFIER_DIR / "model.safetensors"
        return f"{f.stat().st_size}:{f.stat().st_mtime_ns}" if f.is_file() else "missing"
    return "default"


def run_metrics(real: str, fake: str, cfg: MetricsConfig) -> dict[str, Any]:
    """Compute the chosen metrics between ``real`` and ``fake`` (folders, data set names or
    ``.npz`` feature files). Returns ``{"protocol", "real", "fake", "metrics", "seconds"}``."""
    from knnlab.devices import resolve_device
    from knnlab.hubness import hubness_stats
    from knnlab.metrics import density_coverage, fid, kid, memorization_rate, precision_recall
    from knnlab.metrics.feature_cache import features_of
    from knnlab.metrics.features import feature_network

    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    net = feature_network(cfg.features)
    cfg.features = net.name
    user_net = ":" in net.name
    built: list[Any] = []

    def factory() -> Any:  # the network is loaded once, and only if some set needs it
        if not built:
            built.append(net.load(device, cfg.weights))
        return built[0]

    tag = _weights_tag(cfg)
    sides: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    for side, spec in (("real", real), ("fake", fake)):
        sides[side] = features_of(
            os.fspath(spec), net, extractor_factory=factory, weights_tag=tag, resize=cfg.resize,
            batch_size=cfg.batch_size, device=device, limit=cfg.limit, cache_dir=cfg.cache_dir,
            use_cache=cfg.use_cache and not user_net, desc=side,
        )  # fmt: skip
    r, rp = sides["real"]
    f, fp = sides["fake"]
    if r.shape[1] != f.shape[1]:
        raise InputError(
            f"REAL {real!r} has {r.shape[1]}-d features and FAKE {fake!r} {f.shape[1]}-d; "
            "both must come from the same feature network"
        )
    for name, x in (("REAL", r), ("FAKE", f)):
        if len(x) < 2:
            raise InputError(f"{name} has {len(x)} sample; the metrics need at least 2")
    t_feat = time.perf_counter() - t0
    m: dict[str, Any] = {}
    if cfg.fid:
        m["fid"] = fid(r, f)
    if cfg.kid:
        kid_mean_std = kid(
            r, f, cfg.kid_subsets, cfg.kid_subset_size, seed=cfg.seed, return_std=True
        )
        assert isinstance(kid_mean_std, tuple)
        m["kid"], m["kid_std"] = kid_mean_std
    if cfg.prdc:
        m["precision"], m["recall"] = precision_recall(r, f, k=cfg.k_pr)
        m["density"], m["coverage"] = density_coverage(r, f, k=cfg.k_dc)
    if cfg.novelty:
        mem = memorization_rate(f, r)
        m["memorization_rate"] = mem["rate"]
        m["memorization_criterion"] = mem["criterion"]
        m["median_nn_distance"] = mem["median_d1"]
    if cfg.hubness:
        for side, x in (("real", r), ("fake", f)):
            if len(x) <= cfg.k_hub:
                raise InputError(f"--k-hub {cfg.k_hub}: {side} has only {len(x)} samples")
            m[f"hubness_{side}"] = hubness_stats(x, cfg.k_hub)
    both_npz = rp.get("from") == "npz" and fp.get("from") == "npz"
    stored = rp if rp.get("label") else fp  # a .npz written by this command keeps its protocol
    protocol = {
        "network": stored.get("network") if both_npz else net.name,
        "label": stored.get("label") or ("features from .npz files" if both_npz else net.label),
        "resolution": stored.get("resolution") if both_npz else net.resolution,
        "resize": stored.get("resize") if both_npz else cfg.resize,
        "k_pr": cfg.k_pr,
        "k_dc": cfg.k_dc,
        "k_hub": cfg.k_hub,
        "kid_subsets": cfg.kid_subsets,
        "kid_subset_size": cfg.kid_subset_size,
        "seed": cfg.seed,
    }
    out = {
        "protocol": protocol,
        "real": {**rp, "dim": int(r.shape[1]), "count": len(r)},
        "fake": {**fp, "dim": int(f.shape[1]), "count": len(f)},
        "metrics": m,
        "seconds": {
            "features": round(t_feat, 2),
            "metrics": round(time.perf_counter() - t0 - t_feat, 2),
        },
    }
    return out
