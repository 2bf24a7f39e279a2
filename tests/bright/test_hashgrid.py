from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from knnlab.bright.hashgrid import HashGrid, HashGridConfig, hash_grid, level_layout
from knnlab.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from hashgrid_oracle import oracle_hash_grid, oracle_layout, scalar_index


def _points(n, d, gen, dtype=torch.float32):
    x = torch.rand(n, d, generator=gen, dtype=dtype)
    x[0] = 0.0
    x[1] = 1.0  # corners past the last row: wrap-around through the modulo
    x[2, 0] = 1.0
    x[3, -1] = 0.0
    return x


# (d, L, log2 T, N_min, b): mixes dense and hashed levels
CASES = [(2, 6, 10, 4, 1.7), (3, 5, 12, 4, 1.9), (3, 4, 9, 2, 2.0), (1, 3, 3, 3, 2.0)]


def test_layout_matches_tcnn_definition() -> None:
    cfg = HashGridConfig(3, 16, 2, 19, 16, 1.447269237440378)
    ours = [(s, r, o, t) for s, r, o, t, _ in level_layout(cfg)]
    ref = oracle_layout(3, 16, 19, 16, 1.447269237440378)
    assert [o[1:] for o in ours] == [o[1:] for o in ref]
    assert [o[0] for o in ours] == pytest.approx([o[0] for o in ref])
    sizes = [t for *_, t, _ in level_layout(cfg)]
    # 16^3 = 4096 dense; 49^3 = 117649 -> 117656 (multiple of 8); capped at 2^19 later
    assert sizes[0] == 4096 and sizes[3] == 117656 and sizes[-1] == 2**19
    dense = [dn for *_, dn in level_layout(cfg)]
    assert dense[:4] == [True] * 4 and not dense[-1]


def test_finest_resolution_gives_growth() -> None:
    cfg = HashGridConfig(3, 16, 4, 18, 16, finest_resolution=64)
    assert cfg.growth == pytest.approx(math.exp(math.log(4) / 15))


@pytest.mark.parametrize("d,L,log2_t,n_min,b", CASES)
def test_forward_equals_oracle(d, L, log2_t, n_min, b) -> None:
    gen = torch.Generator().manual_seed(d * 100 + L)
    cfg = HashGridConfig(d, L, 3, log2_t, n_min, b)
    layout = level_layout(cfg)
    assert any(dn for *_, dn in layout) and any(not dn for *_, dn in layout)
    grid = HashGrid(d, L, 3, log2_t, n_min, b, generator=gen)
    with torch.no_grad():
        grid.params.normal_(generator=gen)
    x = _points(300, d, gen)
    ref = oracle_hash_grid(x, grid.params, n_levels=L, log2_t=log2_t, n_min=n_min, b=b)
    out = hash_grid(x, grid.params, cfg)
    assert out.shape == (300, L * 3)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grid(x), out, rtol=0, atol=0)  # module == function


def test_indices_against_uint32_scalars() -> None:
    """Level outputs equal the features at the rows named by numpy uint32 arithmetic."""
    d, L, log2_t, n_min, b = 3, 5, 12, 4, 1.9
    cfg = HashGridConfig(d, L, 1, log2_t, n_min, b)
    rows = level_layout(cfg)[-1][2] + level_layout(cfg)[-1][3]
    params = torch.arange(rows, dtype=torch.float64)[:, None]  # feature = global row
    # a point exactly on a vertex (weight 1 on corner 0): the output is that row's id
    for lvl, (scale, _r, off, _s, _dn) in enumerate(level_layout(cfg)):
        cell = torch.tensor([[3.0, 1.0, 2.0]], dtype=torch.float64)
        x = (cell - 0.5 + 1e-10) / scale
        out = hash_grid(x, params, cfg)[0, lvl].item()
        want = off + scalar_index(
            x[0].tolist(), lvl, d=d, n_levels=L, log2_t=log2_t, n_min=n_min, b=b, corner=0
        )
        assert out == pytest.approx(want, abs=1e-4)
    # x = 1: the far corner steps past the grid and wraps
    x = torch.ones(1, d, dtype=torch.float64)
    scale, _r, off, _s, _dn = level_layout(cfg)[0]
    frac = scale + 0.5 - math.floor(scale + 0.5)
    expected = 0.0
    for c in range(8):
        wc = 1.0
        for dim in range(d):
            wc *= frac if (c >> dim) & 1 else 1 - frac
        row = off + scalar_index(
            [1.0] * d, 0, d=d, n_levels=L, log2_t=log2_t, n_min=n_min, b=b, corner=c
        )
        expected += wc * row
    assert hash_grid(x, params, cfg)[0, 0].item() == pytest.approx(expected)


@pytest.mark.parametrize("d", [2, 3])
def test_gradients_equal_oracle(d) -> None:
    gen = torch.Generator().manual_seed(7 + d)
    L, log2_t, n_min, b = 4, 9, 3, 1.8
    cfg = HashGridConfig(d, L, 2, log2_t, n_min, b)
    params = torch.randn(level_layout(cfg)[-1][2] + level_layout(cfg)[-1][3], 2, generator=gen)
    x = torch.rand(200, d, generator=gen)
    w = torch.randn(200, L * 2, generator=gen)
    p1, x1 = params.clone().requires_grad_(), x.clone().requires_grad_()
    (hash_grid(x1, p1, cfg) * w).sum().backward()
    p2, x2 = params.clone().requires_grad_(), x.clone().requires_grad_()
    ref = oracle_hash_grid(x2, p2, n_levels=L, log2_t=log2_t, n_min=n_min, b=b)
    (ref * w).sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-5)
    # the oracle's floor has no gradient; its input gradient is that of the d-linear weights
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_gradcheck_float64(d) -> None:
    gen = torch.Generator().manual_seed(d)
    cfg = HashGridConfig(d, 3, 2, 6, 3, 1.6)
    rows = level_layout(cfg)[-1][2] + level_layout(cfg)[-1][3]
    params = torch.randn(rows, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    x = (0.05 + 0.9 * torch.rand(6, d, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, p: hash_grid(a, p, cfg), (x, params), eps=1e-7, fast_mode=True
    )


def test_init_range_and_non_contiguous() -> None:
    grid = HashGrid(2, 4, 2, 8, 4, 1.5, generator=torch.Generator().manual_seed(0))
    assert grid.params.abs().max() <= 1e-4 and grid.params.std() > 3e-5
    x = torch.rand(4, 10, generator=torch.Generator().manual_seed(1))[:, ::5]
    torch.testing.assert_close(grid(x), grid(x.contiguous()))


def test_errors() -> None:
    with pytest.raises(InputError, match="n_input_dims=5"):
        HashGrid(5)
    grid = HashGrid(2, 2, 2, 6, 4)
    with pytest.raises(InputError, match=r"expected \(N, 2\)"):
        grid(torch.rand(4, 3))
    with pytest.raises(InputError, match="backend"):
        HashGrid(2, backend="cuda")
    with pytest.raises(InputError, match="tinycudann"):
        HashGrid(2, 2, 2, 6, 4, backend="tcnn")(torch.rand(3, 2))


def test_triton_backend_missing() -> None:
    if importlib.util.find_spec("triton") is not None:
        pytest.skip("triton is installed (test_hashgrid_triton.py covers that backend)")
    with pytest.raises(InputError, match="pip install triton"):
        HashGrid(2, 2, 2, 6, 4, backend="triton")
    cfg = HashGridConfig(2, 2, 2, 6, 4)
    params = torch.zeros(level_layout(cfg)[-1][2] + level_layout(cfg)[-1][3], 2)
    with pytest.raises(InputError, match="pip install triton"):
        hash_grid(torch.rand(3, 2), params, cfg, backend="triton")


def test_tcnn_backend_matches_torch() -> None:
    tcnn = pytest.importorskip("tinycudann")
    if not torch.cuda.is_available():
        pytest.skip("tinycudann needs CUDA")
    del tcnn
    grid = HashGrid(3, 8, 2, 14, 16, 1.5, backend="auto").cuda()
    x = torch.rand(1000, 3, device="cuda")
    torch.testing.assert_close(grid(x), hash_grid(x, grid.params, grid.cfg), atol=1e-4, rtol=1e-3)


def test_chunked_passes_equal_one_pass(monkeypatch) -> None:
    import knnlab.bright.hashgrid as hg

    gen = torch.Generator().manual_seed(3)
    cfg = HashGridConfig(3, 3, 2, 8, 4, 1.7)
    params = torch.randn(level_layout(cfg)[-1][2] + level_layout(cfg)[-1][3], 2, generator=gen)
    x = torch.rand(50, 3, generator=gen)
    w = torch.randn(50, 6, generator=gen)

    def run():
        p, a = params.clone().requires_grad_(), x.clone().requires_grad_()
        out = hash_grid(a, p, cfg)
        (out * w).sum().backward()
        return out, p.grad, a.grad

    whole = run()
    monkeypatch.setattr(hg, "_CHUNK", 7)
    for a, b in zip(whole, run()):
        torch.testing.assert_close(a, b)
