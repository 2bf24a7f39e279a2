"""Nearest-neighbour novelty against brute force, memorization rate on planted copies, figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.metrics import memorization_rate, nearest_training, novelty_figure_data, plot_novelty


def brute_nn(g: np.ndarray, t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((g[:, None, :].astype(np.float64) - t[None].astype(np.float64)) ** 2).sum(-1)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d, idx, 1)), idx


def test_nearest_training_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    train = rng.standard_normal((400, 20)).astype(np.float32)
    gen = rng.standard_normal((90, 20)).astype(np.float32)
    nt = nearest_training(torch.from_numpy(gen), train, k=4)
    d, i = brute_nn(gen, train, 4)
    np.testing.assert_array_equal(nt.index, i)
    np.testing.assert_allclose(nt.distance, d, rtol=1e-12)


def test_memorization_rate_finds_planted_copies() -> None:
    rng = np.random.default_rng(1)
    train = rng.standard_normal((500, 16)).astype(np.float32)
    copies = train[:20] + 1e-3 * rng.standard_normal((20, 16)).astype(np.float32)
    novel = rng.standard_normal((80, 16)).astype(np.float32)
    gen = np.concatenate([copies, novel])
    out = memorization_rate(gen, train)
    assert out["rate"] == pytest.approx(20 / 100)
    assert out["memorized"][:20].all() and not out["memorized"][20:].any()
    np.testing.assert_array_equal(out["index"][:20], np.arange(20))
    thr = memorization_rate(gen, train, threshold=0.1)
    assert thr["rate"] == pytest.approx(0.2)
    with pytest.raises(InputError):
        memorization_rate(gen, train, ratio=0.0)


def test_figure_data_and_plot(tmp_path) -> None:
    rng = np.random.default_rng(2)
    train_img = rng.random((60, 1, 8, 8)).astype(np.float32)
    gen_img = rng.random((15, 1, 8, 8)).astype(np.float32)
    gen_img[3] = train_img[7]
    data = novelty_figure_data(
        gen_img.reshape(15, -1), train_img.reshape(60, -1), gen_img, train_img, n_show=4, k=2
    )
    assert data["query_index"][0] == 3 and data["neighbour_index"][0, 0] == 7
    assert data["distance"][0, 0] == 0.0
    assert data["query_images"].shape == (4, 1, 8, 8)
    assert data["neighbour_images"].shape == (4, 2, 1, 8, 8)
    np.testing.assert_array_equal(data["neighbour_images"][0, 0], train_img[7])
    fig = plot_novelty(data, path=tmp_path / "novelty.png")
    assert (tmp_path / "novelty.png").stat().st_size > 0
    assert len(fig.axes) == 4 * 3
    rnd = novelty_figure_data(gen_img.reshape(15, -1), train_img.reshape(60, -1), order="random")
    assert rnd["query_index"].shape == (8,) and "query_images" not in rnd
    with pytest.raises(InputError):
        plot_novelty(rnd)
