import math

import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3.set_block import SetN3Aggregation, set_n3_aggregate


def brute_force(x, e, tau, k, exact_max=False):
    """The released set N³ rule in float64, one query at a time (non_local.py, exclude_self).

    With ``exact_max`` the largest entry's ``1 − w`` is taken as the others' share of the row's sum,
    exact where ``w`` rounds to 1 (sharp rows; every other entry has ``w ≤ ½``)."""
    x, e, tau = (np.asarray(a, dtype=np.float64) for a in (x, e, tau))
    b, n, c = x.shape
    out = np.zeros((b, n, k, c))
    for bi in range(b):
        for i in range(n):
            logits = np.array(
                [-np.sum((e[bi, i] - e[bi, j]) ** 2) * tau[bi, i, 0] if j != i else -math.inf
                 for j in range(n)]
            )  # fmt: skip
            for t in range(k):
                m = logits[np.isfinite(logits)].max()
                w = np.exp(logits - m)
                w /= w.sum()
                out[bi, i, t] = w @ x[bi]
                with np.errstate(divide="ignore"):
                    step = np.log1p(-w)
                    if exact_max:
                        e_ = np.exp(logits - m)
                        top = int(np.argmax(logits))
                        others = np.delete(e_, top).sum()
                        step[top] = np.log(others / (others + e_[top]))
                    logits = logits + step
    return out


def _inputs(b=2, n=9, c=3, d=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, c, generator=g, dtype=dtype)
    e = torch.randn(b, n, d, generator=g, dtype=dtype)
    tau = torch.rand(b, n, 1, generator=g, dtype=dtype) * 2 + 0.1
    return x, e, tau


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_equals_brute_force_float64(chunk):
    x, e, tau = _inputs()
    got = set_n3_aggregate(x, e, tau, 3, chunk_elements=chunk)
    ref = brute_force(x, e, tau, 3)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_self_is_excluded_even_when_it_is_the_nearest():
    x, e, tau = _inputs(b=1, n=5)
    tau = tau * 0 + 1e4  # nearly hard selection
    z = set_n3_aggregate(x, e, tau, 1)[:, :, 0]
    d = torch.cdist(e[0], e[0]).fill_diagonal_(float("inf"))
    nearest = d.argmin(1)
    torch.testing.assert_close(z[0], x[0, nearest], rtol=1e-6, atol=1e-6)


def test_chunked_gradients_match_unchunked():
    x, e, tau = _inputs(n=11)
    grads = []
    for chunk in (10**6, 5):
        xs, es, ts = (a.clone().requires_grad_() for a in (x, e, tau))
        w = torch.linspace(-1, 1, 2 * 11 * 3 * 3, dtype=torch.float64).reshape(2, 11, 3, 3)
        (set_n3_aggregate(xs, es, ts, 3, chunk_elements=chunk) * w).sum().backward()
        grads.append([a.grad for a in (xs, es, ts)])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_gradcheck():
    x, e, tau = _inputs(b=1, n=5, c=2, d=2)
    args = tuple(a.requires_grad_() for a in (x, e, tau))
    assert torch.autograd.gradcheck(lambda *a: set_n3_aggregate(*a, 2, chunk_elements=5), args)


def test_module_concatenates_x_and_neighbours():
    x, e, tau = _inputs()
    out = SetN3Aggregation(k=3)(x, e, tau)
    z = set_n3_aggregate(x, e, tau, 3)
    assert out.shape == (2, 9, 12)
    torch.testing.assert_close(out[..., :3], x)
    torch.testing.assert_close(out[..., 3:], z.reshape(2, 9, 9))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"k": 9}, "k"), ({"k": 0}, "k"), ({"relaxation": "paper"}, "relaxation")],
)
def test_bad_arguments(kwargs, match):
    x, e, tau = _inputs()
    args = {"k": 3, **kwargs}
    with pytest.raises(InputError, match=match):
        set_n3_aggregate(x, e, tau, args.pop("k"), **args)
    with pytest.raises(InputError, match="inv_temperature"):
        set_n3_aggregate(x, e, tau[:, :4], 3)


def test_candidates_all_is_exact_and_few_candidates_match_a_pruned_brute_force():
    x, e, tau = _inputs(n=12)
    full = set_n3_aggregate(x, e, tau, 3)
    torch.testing.assert_close(set_n3_aggregate(x, e, tau, 3, candidates=11), full)
    # M nearest only: brute force on the pruned candidate set (others masked out)
    m = 5
    got = set_n3_aggregate(x, e, tau, 3, candidates=m, chunk_elements=30)
    b, n, _ = x.shape
    ref = np.zeros((b, n, 3, 3))
    for bi in range(b):
        d = torch.cdist(e[bi], e[bi]).pow(2).fill_diagonal_(float("inf"))
        for i in range(n):
            keep = d[i].argsort()[:m]
            sub_x = x[bi, keep][None]
            sub_e = torch.cat([e[bi, i : i + 1], e[bi, keep]])[None]
            sub_t = torch.cat([tau[bi, i : i + 1], tau[bi, keep]])[None]
            sub_x = torch.cat([x[bi, i : i + 1][None], sub_x], dim=1)
            ref[bi, i] = brute_force(sub_x, sub_e, sub_t, 3)[0, 0]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sharp_rows_take_the_sparse_path_and_equal_brute_force(monkeypatch, dtype):
    # large inverse temperatures: each query's weights sit on a few of its 59 candidates, and
    # without autograd a block is aggregated over those entries only (forced here for every block:
    # with N = 59 candidates even a few are more than the share the default allows)
    import knnlab.n3.set_block as sb

    x, e, tau = _inputs(b=2, n=60, c=3, d=4, seed=3, dtype=torch.float64)
    tau = tau * 20 + 5
    used = []
    real = sb._sparse_block

    def spy(*args):
        z = real(*args)
        used.append(z is not None)
        return z

    monkeypatch.setattr(sb, "_sparse_block", spy)
    monkeypatch.setattr(sb, "SPARSE_SHARE", 1.0)
    with torch.no_grad():
        got = set_n3_aggregate(x.to(dtype), e.to(dtype), tau.to(dtype), 3)
    assert used and all(used)
    ref = brute_force(x, e, tau, 3, exact_max=True)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(got.double().numpy(), ref, **tol)
    # a block with too many non-zero weights goes the dense way, with the same result
    used.clear()
    monkeypatch.setattr(sb, "SPARSE_SHARE", 0.0)
    with torch.no_grad():
        dense = set_n3_aggregate(x.to(dtype), e.to(dtype), tau.to(dtype), 3)
    assert used and not any(used)
    np.testing.assert_allclose(dense.double().numpy(), ref, **tol)
