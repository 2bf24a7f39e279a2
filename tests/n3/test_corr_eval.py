import numpy as np
import pytest

from knnlab.data.twoview_synthetic import SyntheticTwoViewConfig, synthetic_pair
from knnlab.n3.corr_eval import evaluate_scene, map_scores, ransac_pose


def test_map_scores_by_hand():
    errs = [1.0, 4.9, 7.0, 12.0, 19.0, 30.0, 180.0, 2.0]
    s = map_scores(errs)
    acc = [3 / 8, 4 / 8, 5 / 8, 6 / 8]  # < 5, < 10, < 15, < 20
    assert s["acc@5"] == pytest.approx(acc[0]) and s["acc@20"] == pytest.approx(acc[3])
    assert s["mAP@5"] == pytest.approx(acc[0])
    assert s["mAP@10"] == pytest.approx(np.mean(acc[:2]))
    assert s["mAP@20"] == pytest.approx(np.mean(acc))


def test_ransac_recovers_a_synthetic_pose_and_oracle_beats_all():
    cfg = SyntheticTwoViewConfig(num_matches=600, outlier_ratio=(0.5, 0.5))
    pairs = [synthetic_pair(9, i, cfg) for i in range(4)]
    for p in pairs:
        R, t, _ = ransac_pose(p["x"], p["label"])
        assert R is not None and t is not None
        from knnlab.data.epipolar import pose_errors

        e_r, e_t = pose_errors(p["R"], p["t"], R, t)
        assert e_r < 2.0 and e_t < 5.0
    oracle = evaluate_scene("oracle", pairs, lambda x: np.where(_lookup(pairs, x), 1.0, -1.0))
    assert oracle["precision"] == 1.0 and oracle["recall"] == 1.0
    assert oracle["mAP@20"] > 0.7
    few = evaluate_scene("none", pairs, lambda x: -np.ones(len(x)))
    assert few["mAP@20"] == 0.0 and few["per_pair"][0]["err_R"] == 180.0


def _lookup(pairs, x):
    for p in pairs:
        if p["x"] is x or np.array_equal(p["x"], x):
            return p["label"]
    raise AssertionError
