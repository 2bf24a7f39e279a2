from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from knnlab.bright.autoencoder import BrightAutoencoder, bright_config
from knnlab.bright.evaluate import codebook_usage, decoder_cost, evaluate_autoencoder
from knnlab.bright.hashgrid import HashGridConfig, level_layout, level_usage

sys.path.insert(0, str(Path(__file__).parent))
from hashgrid_oracle import oracle_layout, scalar_index


def test_codebook_usage_against_numpy() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, size=(4, 3, 3, 2))  # 5 of 8 codes can occur
    out = codebook_usage(torch.from_numpy(codes), 8)
    for j in range(2):
        counts = np.bincount(codes[..., j].ravel(), minlength=8)
        p = counts[counts > 0] / counts.sum()
        assert out["perplexity"][j] == pytest.approx(math.exp(-(p * np.log(p)).sum()))
        assert out["dead_share"][j] == pytest.approx((counts == 0).mean())


def test_level_usage_by_brute_force() -> None:
    d, L, log2_t, n_min, b = 3, 3, 8, 3, 1.7
    cfg = HashGridConfig(d, L, 2, log2_t, n_min, b)
    x = torch.rand(40, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = level_usage(x, cfg)
    for lvl, (_s, _r, _o, size) in enumerate(oracle_layout(d, L, log2_t, n_min, b)):
        hit = set()
        for p in x.tolist():
            for c in range(2**d):
                hit.add(scalar_index(p, lvl, d=d, n_levels=L, log2_t=log2_t, n_min=n_min, b=b,
                                     corner=c))  # fmt: skip
        assert got[lvl] == pytest.approx(len(hit) / size)
    assert len(got) == len(level_layout(cfg))


def test_evaluate_and_cost_on_a_small_model() -> None:
    m = BrightAutoencoder(bright_config("tiny", n_levels=3, log2_hashmap_size=8))
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    ev = evaluate_autoencoder(m, x, batch_size=4)
    assert ev["num_images"] == 6 and math.isfinite(ev["psnr"]) and -1 <= ev["ssim"] <= 1
    assert len(ev["grid_usage_per_level"]) == 3 and ev["_recon"].shape == x.shape
    cost = decoder_cost(m)
    grids = sum(g.grid.params.numel() for g in m.groups)
    assert cost["grid_params"] == grids
    assert cost["decoder_params"] + grids == sum(
        p.numel() for p in [*m.groups.parameters(), *m.decoder.parameters()]
    )
    assert cost["decoder_gflops"] > 0
