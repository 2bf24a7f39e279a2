"""Yi et al.'s pose protocol for correspondence classifiers (CVPR 2018, Sec. 4).

For every pair: select the matches a method calls inliers (all of them for plain RANSAC, logit > 0
for a network), estimate the essential matrix with OpenCV RANSAC (``findEssentialMat`` on normalised
coordinates, threshold 0.001, confidence 0.999) and the pose with ``recoverPose``. The error of a pair
is ``max(rotation error, translation-direction error)`` in degrees (180° when fewer than 5 matches
are selected or RANSAC fails). Accuracy at 5/10/15/20° is the fraction of pairs below the
threshold; ``mAP@T`` is the mean of the accuracies of the 5° bins up to ``T`` (so mAP@5 = acc@5,
mAP@20 = mean of acc@5, 10, 15, 20). Inlier precision / recall / F1 compare the selection with the
ground-truth labels (for RANSAC: its final inlier set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from knnlab.data.epipolar import pose_errors
from knnlab.errors import DataNotFoundError, InputError

__all__ = [
    "FAILED_ERROR_DEG",
    "THRESHOLDS",
    "evaluate_scene",
    "load_corr_model",
    "map_scores",
    "predict_inliers",
    "ransac_pose",
]

log = logging.getLogger(__name__)

THRESHOLDS = (5, 10, 15, 20)
FAILED_ERROR_DEG = 180.0


def load_corr_model(spec: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """A CNNet / N3CNNet from a ``save_pretrained`` folder (or a run folder holding ``model/``), or
    ``"n3cnnet"`` for the shipped weights of ``knnlab experiment corr``."""
    from knnlab.hub import read_config
    from knnlab.n3.cnnet import CNNet, N3CNNet

    if str(spec) == "n3cnnet":
        path = Path(__file__).resolve().parents[1] / "assets" / "n3cnnet"
    else:
        path = Path(spec)
        if (path / "model" / "config.json").is_file():
            path = path / "model"
    if not (path / "config.json").is_file():
        raise DataNotFoundError(
            f"--model {str(spec)!r}: not a model folder (with config.json and model.safetensors); "
            "pass one written by `knnlab train corr`, `ransac`, or `n3cnnet`"
        )
    import json

    kind = json.loads((path / "config.json").read_text()).get("model_type")
    classes: dict[str, Any] = {"CNNet": CNNet, "N3CNNet": N3CNNet}
    if kind not in classes:
        raise InputError(f"--model {str(spec)!r}: holds a {kind}, not a CNNet or N3CNNet")
    read_config(path, kind, classes[kind].config_class)  # validates the fields
    return classes[kind].from_pretrained(path).to(device)


@torch.no_grad()
def predict_inliers(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Logits ``(N,)`` of one pair's matches ``x (N, 4)`` (normalised coordinates)."""
    dev = next(model.parameters()).device
    model.eval()
    return (
        model(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None].to(dev))[0].cpu().numpy()
    )


def ransac_pose(
    x: np.ndarray, mask: np.ndarray, *, threshold: float = 1e-3, seed: int = 0
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """``(R, t, inliers)`` from the selected matches ``x[mask]``; ``R, t = None`` on failure.

    Several essential matrices from one RANSAC call are each decomposed; the one with most points in
    front of both cameras wins (as in Yi et al.'s test code). ``inliers (N,)`` is RANSAC's inlier set.
    """
    import cv2

    inliers = np.zeros(len(x), dtype=bool)
    sel = np.flatnonzero(mask)
    if len(sel) < 5:
        return None, None, inliers
    p0 = np.ascontiguousarray(x[sel, :2], np.float64)
    p1 = np.ascontiguousarray(x[sel, 2:], np.float64)
    cv2.setRNGSeed(seed)
    E, m = cv2.findEssentialMat(
        p0, p1, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=threshold
    )
    if E is None or E.shape[0] % 3 or m is None:
        return None, None, inliers
    best: tuple[int, Any, Any, Any] = (-1, None, None, None)
    for i in range(E.shape[0] // 3):
        n, R, t, m2 = cv2.recoverPose(E[3 * i : 3 * i + 3], p0, p1, np.eye(3), mask=m.copy())
        if n > best[0]:
            best = (n, R, t, m2)
    if best[1] is None:
        return None, None, inliers
    inliers[sel] = m.ravel() > 0
    return best[1], best[2].ravel(), inliers


def map_scores(errors: Sequence[float]) -> dict[str, float]:
    """``acc@5/10/15/20`` and ``mAP@5/10/20`` (fractions in [0, 1]) of per-pair errors in degrees."""
    err = np.asarray(errors, dtype=np.float64)
    out: dict[str, float] = {}
    accs = [float(np.mean(err < th)) if len(err) else float("nan") for th in THRESHOLDS]
    for th, a in zip(THRESHOLDS, accs):
        out[f"acc@{th}"] = a
    for top in (5, 10, 20):
        out[f"mAP@{top}"] = float(np.mean(accs[: top // 5]))
    return out


def _prf(pred: np.ndarray, label: np.ndarray) -> tuple[int, int, int]:
    return int((pred & label).sum()), int((pred & ~label).sum()), int((~pred & label).sum())


def evaluate_scene(
    method: str,
    pairs: Sequence[dict[str, np.ndarray]],
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Score one method on a scene's pairs (each from :func:`knnlab.data.twoview.pair_matches`).

    ``predict(x (N, 4)) → logits (N,)``, or None for RANSAC on all matches. Returns the mAP scores,
    inlier precision / recall / F1 (micro-averaged over the scene's matches) and per-pair errors.
    """
    from knnlab.progress import progress

    errs, tp, fp, fn = [], 0, 0, 0
    per_pair = []
    for m in progress(pairs, desc=f"eval {method}", total=len(pairs)):
        x, label = m["x"], m["label"]
        mask = np.ones(len(x), bool) if predict is None else predict(x) > 0
        R, t, ransac_in = ransac_pose(x, mask, seed=seed)
        if R is None or t is None:
            e_r = e_t = FAILED_ERROR_DEG
        else:
            e_r, e_t = pose_errors(m["R"], m["t"], R, t)
        errs.append(max(e_r, e_t))
        chosen = ransac_in if predict is None else mask
        a, b, c = _prf(chosen, label)
        tp, fp, fn = tp + a, fp + b, fn + c
        per_pair.append(
            {"err_R": e_r, "err_t": e_t, "selected": int(mask.sum()), "inliers": int(label.sum())}
        )
    if not errs:
        raise InputError(f"evaluate_scene({method!r}): no pairs")
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {
        "method": method,
        "pairs": len(errs),
        **map_scores(errs),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "median_err": float(np.median(errs)),
        "per_pair": per_pair,
    }
