"""Samplers: the hub sampler's k-occurrence and acceptance rate against an independent numpy
simulation; baselines; W space; seeding; the endless-loop guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from knnlab.errors import InputError, KnnlabError
from knnlab.hubness import (
    HubSampler,
    HubSamplerConfig,
    LatentSampler,
    RandomSampler,
    TruncationSampler,
)


def numpy_k_occurrence(z: np.ndarray, k: int, chunk: int = 1000, fast: bool = False) -> np.ndarray:
    """Brute force: Gram matrix in float64, self excluded, ties by lower index (``fast``: float32
    Gram and argpartition, ties arbitrary — for continuous data where ties do not occur)."""
    z = np.asarray(z, dtype=np.float32 if fast else np.float64)
    sq = (z**2).sum(1)
    n = len(z)
    counts = np.zeros(n, dtype=np.int64)
    for s in range(0, n, chunk):
        d = sq[s : s + chunk, None] + sq[None, :] - 2.0 * z[s : s + chunk] @ z.T
        d[np.arange(d.shape[0]), np.arange(s, s + d.shape[0])] = np.inf
        if fast:
            nn = np.argpartition(d, k, axis=1)[:, :k]
        else:
            nn = np.argsort(d, axis=1, kind="stable")[:, :k]
        counts += np.bincount(nn.ravel(), minlength=n)
    return counts


def test_pool_k_occurrence_matches_numpy_and_selection() -> None:
    s = HubSampler(128, k=5, threshold=20, pool_size=1500, seed=3)
    z, lat, kocc = s.draw_pool()
    assert torch.equal(z, lat)
    ref = numpy_k_occurrence(z.numpy(), 5)
    np.testing.assert_array_equal(kocc, ref)
    # sample() with the same seed takes exactly the pool members with k-occurrence >= threshold
    s2 = HubSampler(128, k=5, threshold=20, pool_size=1500, seed=3)
    want = np.flatnonzero(ref >= 20)
    n = min(len(want), 10)
    out = s2.sample(n)
    assert torch.equal(out, z[torch.from_numpy(want[:n])])
    assert s2.stats["pools_drawn"] == 1
    assert s2.stats["acceptance_rate"] == pytest.approx(len(want) / 1500)
    np.testing.assert_array_equal(s2.stats["hub_values"], ref[want[:n]])
    assert s2.stats["hub_values"].min() >= 20


@pytest.mark.slow
def test_acceptance_rate_matches_independent_simulation() -> None:
    """Issue 4: ~1.8 % acceptance for Gaussian Z, d = 512, pool 10 000, k = 5, threshold 50."""
    rng = np.random.default_rng(12345)
    z = rng.standard_normal((10_000, 512), dtype=np.float32)
    sim_rate = float(np.mean(numpy_k_occurrence(z, 5, fast=True) >= 50))
    assert 0.012 < sim_rate < 0.025
    s = HubSampler(512, k=5, threshold=50, pool_size=10_000, seed=0)
    out = s.sample(150)  # about one pool
    assert out.shape == (150, 512)
    assert s.stats["hub_values"].min() >= 50
    # one pool each: per-pool rate varies by roughly +-0.15 points
    assert abs(s.stats["acceptance_rate"] - sim_rate) < 0.006


def test_top_mode_and_multiple_pools() -> None:
    s = HubSampler(32, k=5, pool_size=300, mode="top", top_m=7, seed=1)
    out, z = s.sample(20, return_z=True)
    assert out.shape == (20, 32) and torch.equal(out, z)
    assert s.stats["pools_drawn"] == 3
    hv = s.stats["hub_values"]
    assert list(hv[:7]) == sorted(hv[:7], reverse=True)  # largest first within a pool
    assert s.stats["acceptance_rate"] == pytest.approx(7 / 300)


def test_w_space_returns_w_and_searches_in_w() -> None:
    torch.manual_seed(0)
    mapping = torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.Tanh())
    s = HubSampler(16, k=4, threshold=8, pool_size=400, space="w", mapping=mapping, seed=5)
    z, w_pool, kocc = s.draw_pool()
    with torch.no_grad():
        torch.testing.assert_close(w_pool, mapping(z))
    np.testing.assert_array_equal(kocc, numpy_k_occurrence(w_pool.numpy(), 4))
    w, z2 = HubSampler(
        16, k=4, threshold=8, pool_size=400, space="w", mapping=mapping, seed=5
    ).sample(5, return_z=True)
    assert w.shape == (5, 24) and z2.shape == (5, 16)
    with torch.no_grad():
        torch.testing.assert_close(w, mapping(z2))


def test_seeding_is_explicit() -> None:
    a = HubSampler(32, k=3, threshold=6, pool_size=200, seed=7).sample(10)
    torch.manual_seed(123)  # the global RNG does not matter
    b = HubSampler(32, k=3, threshold=6, pool_size=200, seed=7).sample(10)
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(7)
    c = HubSampler(32, k=3, threshold=6, pool_size=200, generator=g).sample(10)
    assert torch.equal(a, c)


def test_guard_against_endless_loop() -> None:
    s = HubSampler(64, k=5, threshold=150, pool_size=200, seed=0, patience_pools=2)
    with pytest.raises(KnnlabError, match="lower"):
        s.sample(5)
    s = HubSampler(64, k=5, threshold=10, pool_size=200, seed=0, max_pools=2)
    with pytest.raises(KnnlabError, match="max_pools"):
        s.sample(10_000)
    with pytest.raises(InputError):
        HubSampler(64, threshold=500, pool_size=200)
    with pytest.raises(InputError):
        HubSampler(64, mode="top")
    with pytest.raises(InputError):
        HubSampler(64, space="w")
    with pytest.raises(InputError):
        HubSampler(64, generator=torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_from_config_roundtrip() -> None:
    cfg = HubSamplerConfig(latent_dim=8, k=3, threshold=5, pool_size=100, seed=2)
    s = HubSampler.from_config(cfg)
    assert s.config == cfg and isinstance(s, LatentSampler)


def test_baselines() -> None:
    r = RandomSampler(64, seed=0).sample(1000)
    assert r.shape == (1000, 64) and abs(float(r.std()) - 1) < 0.05
    t = TruncationSampler(64, psi=0.5, seed=0).sample(1000)
    assert t.shape == (1000, 64) and float(t.abs().max()) <= 0.5
    assert float(t.abs().mean()) > 0.2  # resampled, not clipped to 0 or to +-psi
    # W: psi-truncation toward the mean w
    mapping = torch.nn.Linear(8, 5)
    ts = TruncationSampler(8, psi=0.3, space="w", mapping=mapping, n_mean=20_000, seed=1)
    w, z = ts.sample(50, return_z=True)
    with torch.no_grad():
        want = ts.w_mean + 0.3 * (mapping(z) - ts.w_mean)
        torch.testing.assert_close(ts.w_mean, mapping.bias, atol=0.05, rtol=0)  # E[Az+b] = b
    torch.testing.assert_close(w, want)
    given = TruncationSampler(8, psi=0.0, space="w", mapping=mapping, w_mean=torch.ones(5))
    assert torch.equal(given.sample(3), torch.ones(3, 5))
    rw = RandomSampler(8, space="w", mapping=mapping).sample(4)
    assert rw.shape == (4, 5)
