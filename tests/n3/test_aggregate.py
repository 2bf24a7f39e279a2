"""Tests of knnlab.n3.aggregate: the tiled implementation against the gather oracle, and the geometry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from knnlab.errors import InputError
from knnlab.n3 import N3Aggregation, PatchGrid, n3_aggregate
from knnlab.n3.reference import n3_aggregate_gather


def make_inputs(b, c, e, h, w, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    emb = torch.randn(b, e, h, w, generator=g, dtype=dtype) * 0.3
    lt = torch.randn(b, 1, h, w, generator=g, dtype=dtype) * 0.3
    return x, emb, lt


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # these are many small ops: extra threads only contend (badly so on a shared machine)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_window_geometry_matches_loop():
    grid = PatchGrid(83, 97, 10, 5, 15)
    assert grid.pad == (1, 1, 1, 2) and grid.padded_size == (85, 100)
    assert (grid.n1, grid.n2, grid.M) == (16, 19, 224)
    rows, cols = grid.candidates
    for i in range(grid.n1):
        for j in range(grid.n2):
            ci = min(max(i - 7, 0), grid.n1 - 15)
            cj = min(max(j - 7, 0), grid.n2 - 15)
            want = [
                (r, c) for r in range(ci, ci + 15) for c in range(cj, cj + 15) if (r, c) != (i, j)
            ]
            got = list(zip(rows[i, j].tolist(), cols[i, j].tolist()))
            assert got == want


@pytest.mark.parametrize(
    ("size", "relaxation"),
    [
        ((80, 80), "reference"),
        ((83, 97), "reference"),
        ((90, 130), "reference"),
        ((83, 97), "paper"),
        ((90, 130), "hard"),
    ],
)
def test_matches_gather(size, relaxation):
    x, emb, lt = make_inputs(2, 2, 2, *size)
    kw = dict(relaxation=relaxation, log_temperature_offset=1.5)
    want = n3_aggregate_gather(x, emb, lt, 3, **kw)
    assert want.shape == (2, 3, 2, *size)
    for tile in (None, 4):
        got = n3_aggregate(x, emb, lt, 3, tile=tile, **kw)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("train", [True, False])
def test_matches_gather_with_distance_norm(train):
    x, emb, lt = make_inputs(2, 2, 2, 83, 97, seed=1)
    bn = nn.BatchNorm1d(1).double()
    with torch.no_grad():
        (
            bn.weight.fill_(0.4),
            bn.bias.fill_(0.02),
            bn.running_mean.fill_(-2.0),
            bn.running_var.fill_(0.5),
        )
    bn2 = nn.BatchNorm1d(1).double()
    bn2.load_state_dict(bn.state_dict())
    bn.train(train), bn2.train(train)
    got = n3_aggregate(x, emb, lt, 4, distance_norm=bn)
    want = n3_aggregate_gather(x, emb, lt, 4, distance_norm=bn2)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(bn.running_mean, bn2.running_mean)
    torch.testing.assert_close(bn.running_var, bn2.running_var)


def test_gradients_match_gather_float32_border_heavy():
    x, emb, lt = make_inputs(2, 2, 3, 90, 130, seed=2, dtype=torch.float32)
    grads = []
    for fn in (n3_aggregate, n3_aggregate_gather):
        ins = [t.clone().requires_grad_() for t in (x, emb, lt)]
        bn = nn.BatchNorm1d(1)
        out = fn(*ins, 3, distance_norm=bn, log_temperature_offset=-1.0)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        grads.append([out.detach()] + [t.grad for t in ins] + [bn.weight.grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("tile", [None, 2])
def test_gradcheck_small(tile):
    # 3×3 window over a 4×5 grid of 4×4 patches at stride 2: 9×12 pixels (padded to 10×12)
    x, emb, lt = make_inputs(1, 2, 2, 9, 12, seed=3)
    ins = tuple(t.requires_grad_() for t in (x, emb, lt))

    def fn(x, emb, lt):
        return n3_aggregate(x, emb, lt, 2, patch_size=4, stride=2, window=3, tile=tile)

    assert torch.autograd.gradcheck(fn, ins, fast_mode=True)


def test_too_small_raises_naming_minimum():
    x, emb, lt = make_inputs(1, 1, 1, 76, 120)
    with pytest.raises(InputError, match=r"76×76.*80×80"):
        n3_aggregate(x[..., :75, :], emb[..., :75, :], lt[..., :75, :], 7)
    assert n3_aggregate(x, emb, lt, 1).shape == (1, 1, 1, 76, 120)  # the minimum works


def test_shape_errors():
    x, emb, lt = make_inputs(1, 2, 3, 80, 80)
    with pytest.raises(InputError, match="embedding"):
        n3_aggregate(x, emb[..., :79], lt, 2)
    with pytest.raises(InputError, match="log_temperature"):
        n3_aggregate(x, emb, lt.expand(1, 2, 80, 80), 2)
    with pytest.raises(InputError, match="larger than the number of candidates"):
        n3_aggregate(x, emb, lt, 225)


def test_module_equals_function_and_noncontiguous():
    x, emb, lt = make_inputs(2, 3, 4, 80, 84, seed=4)
    mod = N3Aggregation(2, distance_norm=True, log_temperature_offset=0.3).double().eval()
    want = n3_aggregate(x, emb, lt, 2, distance_norm=mod.distance_norm, log_temperature_offset=0.3)
    torch.testing.assert_close(mod(x, emb, lt), want)
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)
    et = emb.transpose(2, 3).contiguous().transpose(2, 3)
    torch.testing.assert_close(mod(xt, et, lt), want)
    assert isinstance(mod.distance_norm, nn.BatchNorm1d)


def test_no_temperature_is_unit_temperature():
    x, emb, _ = make_inputs(1, 2, 2, 80, 80, seed=5)
    torch.testing.assert_close(
        n3_aggregate(x, emb, None, 2), n3_aggregate(x, emb, torch.zeros_like(x[:, :1]), 2)
    )
