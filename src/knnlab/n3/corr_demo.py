"""Demo section "corr": the shipped N3CNNet on real pairs, one pair drawn and the mAP table."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from knnlab.results import ExperimentResult

__all__ = ["TITLE", "section"]

log = logging.getLogger(__name__)

TITLE = "Correspondences: N3CNNet + RANSAC vs RANSAC on real pairs"
PAIRS = 12  # pairs of each scene in the (non-quick) demo; the experiment scores all of them


def section(*, quick: bool, device: torch.device | str, seed: int) -> ExperimentResult:
    """RANSAC on all matches vs the shipped N3CNNet + RANSAC on the first :data:`PAIRS` pairs of
    reichstag and lund_door (quick: the first 5 reichstag pairs). Missing scenes or weights raise
    :class:`~knnlab.errors.DataNotFoundError` (the demo then shows the section as skipped)."""
    from knnlab.n3.corr_eval import evaluate_scene, load_corr_model, predict_inliers
    from knnlab.n3.corr_experiment import COLUMNS, _scene_matches, draw_pair_figure, score_table

    scenes = ("reichstag",) if quick else ("reichstag", "lund_door")
    limit = 5 if quick else PAIRS
    net = load_corr_model("n3cnnet", device)
    matches = {s: _scene_matches(s, limit) for s in scenes}
    res = ExperimentResult(
        "corr",
        TITLE,
        summary=(
            "The shipped N3CNNet (trained by `knnlab experiment corr` on synthetic pairs only) picks "
            "inliers among the SIFT nearest-neighbour matches; OpenCV RANSAC estimates the pose."
        ),
    )
    scores: list[dict[str, Any]] = []
    for scene, ms in matches.items():
        for label, model in (("RANSAC (all matches)", None), ("N3CNNet + RANSAC", net)):
            t0 = time.perf_counter()

            def predict(x, model=model):
                return predict_inliers(model, x)

            s = evaluate_scene(label, ms, None if model is None else predict, seed=seed)
            s["scene"] = scene
            scores.append(s)
            res.timings[f"{scene}_{label.split()[0]}_s"] = round(time.perf_counter() - t0, 1)
    res.add_table(
        "map", score_table(scores), columns=COLUMNS,
        caption="Pose accuracy (%) per scene (Yi et al.'s protocol) and inlier precision/recall/F1 (%)"
        + f" on the first {limit} pairs of each scene (all pairs: `knnlab eval corr`)",
    )  # fmt: skip
    png, caption = draw_pair_figure(net, "reichstag")
    res.add_figure(png, "pair.png", caption=caption)
    res.protocol = {"scenes": list(scenes), "pairs": f"first {limit}", "seed": seed}
    return res
