import numpy as np
import torch

from knnlab.data.epipolar import symmetric_epipolar_distance
from knnlab.data.twoview_synthetic import SyntheticTwoView, SyntheticTwoViewConfig, synthetic_pair


def test_deterministic_in_seed_and_index():
    a, b = synthetic_pair(3, 7), synthetic_pair(3, 7)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = synthetic_pair(3, 8)
    assert not np.array_equal(a["x"], c["x"])
    d = synthetic_pair(4, 7)
    assert not np.array_equal(a["x"], d["x"])
    ds = SyntheticTwoView(10, seed=3)
    torch.testing.assert_close(ds[7]["x"], torch.from_numpy(a["x"]))


def test_geometry_of_the_draw():
    cfg = SyntheticTwoViewConfig(num_matches=500, noise_px=0.0)
    for i in range(5):
        p = synthetic_pair(0, i, cfg)
        inl = ~p["is_outlier"]
        assert 0.5 - 1e-3 <= p["is_outlier"].mean() <= 0.95 + 1e-3
        # noise-free inliers are on their epipolar lines; near-misses are not
        x = p["x"].astype(np.float64)
        d = symmetric_epipolar_distance(x[:, :2], x[:, 2:], p["E"])
        assert d[inl].max() < 1e-10
        assert p["label"][inl].all()
        # rotation within 30 degrees, t unit length, points inside both images
        angle = np.degrees(np.arccos(np.clip((np.trace(p["R"]) - 1) / 2, -1, 1)))
        assert angle <= 30 + 1e-9 and abs(np.linalg.norm(p["t"]) - 1) < 1e-12
        for uv, size in ((p["uv0"], p["size0"]), (p["uv1"][inl], p["size1"])):
            assert (uv >= -1e-9).all() and (uv <= size + 1e-9).all()
        # most outliers are labelled outliers
        assert p["label"][p["is_outlier"]].mean() < 0.1
