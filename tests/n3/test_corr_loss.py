import numpy as np
import torch

from knnlab.data.twoview_synthetic import SyntheticTwoViewConfig, synthetic_pair
from knnlab.n3.corr_loss import classification_loss, essential_loss, weighted_eight_point


def test_weighted_eight_point_recovers_E_from_noise_free_inliers():
    cfg = SyntheticTwoViewConfig(num_matches=200, noise_px=0.0, outlier_ratio=(0.6, 0.6))
    for idx in range(3):
        p = synthetic_pair(5, idx, cfg)
        x = torch.from_numpy(p["x"]).double()[None]
        w = torch.from_numpy((~p["is_outlier"]).astype(np.float64))[None]  # outliers weigh 0
        e_hat = weighted_eight_point(x, w)[0].numpy()
        e = p["E"].ravel() / np.linalg.norm(p["E"])
        assert min(np.abs(e_hat - e).max(), np.abs(e_hat + e).max()) < 1e-6


def test_essential_loss_zero_for_perfect_weights_and_large_for_uniform():
    cfg = SyntheticTwoViewConfig(num_matches=300, noise_px=0.0, outlier_ratio=(0.7, 0.7))
    p = synthetic_pair(2, 0, cfg)
    x = torch.from_numpy(p["x"])[None].double()
    E = torch.from_numpy(p["E"])[None]
    good = torch.where(torch.from_numpy(~p["is_outlier"]), 10.0, -10.0)[None].double()
    assert essential_loss(good, x, E) < 1e-8
    assert essential_loss(torch.full_like(good, 10.0), x, E) > 1e-2


def test_classification_loss_is_the_balanced_logistic_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 50, generator=g, dtype=torch.float64)
    labels = torch.rand(3, 50, generator=g) < 0.2
    got = classification_loss(logits, labels)
    ref = []
    for lg, lb in zip(logits.numpy(), labels.numpy()):
        sig = 1 / (1 + np.exp(-lg))
        ref.append(0.5 * np.mean(-np.log(sig[lb])) + 0.5 * np.mean(-np.log(1 - sig[~lb])))
    np.testing.assert_allclose(got.item(), np.mean(ref), rtol=1e-10)
