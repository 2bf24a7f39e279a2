"""Tests of knnlab.n3.continuous_knn against an independent float64 implementation of the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from knnlab.errors import InputError
from knnlab.n3 import ContinuousKNN, continuous_knn, continuous_knn_weights, log1mexp
from knnlab.n3.continuous_knn import _masked_log_softmax


def slow_knn(logits: np.ndarray, values: np.ndarray, k: int, relaxation: str, temperature=None):
    """Row by row in float64 numpy, straight from the formulas (no log-space tricks)."""
    q = logits.shape[0]
    out = np.zeros((q, k, values.shape[1]))
    for i in range(q):
        if relaxation == "paper":
            alpha = logits[i] * temperature[i]  # α = −d, logits = α / T
        else:
            a = logits[i].copy()
        for t in range(k):
            s = alpha / temperature[i] if relaxation == "paper" else a
            w = np.exp(s - s.max())
            w /= w.sum()
            out[i, t] = w @ values
            if relaxation == "paper":
                alpha = alpha + np.log(1 - w)
            else:
                a = a + np.log(1 - w)
    return out


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 9, generator=g, dtype=torch.float64) * 2
    values = torch.randn(9, 4, generator=g, dtype=torch.float64)
    temp = torch.rand(6, 1, generator=g, dtype=torch.float64) + 0.5
    return logits, values, temp


@pytest.mark.parametrize("relaxation", ["reference", "paper"])
def test_matches_independent_float64(data, relaxation):
    logits, values, temp = data
    got = continuous_knn(logits, values, 4, relaxation=relaxation, temperature=temp)
    want = slow_knn(logits.numpy(), values.numpy(), 4, relaxation, temp.numpy()[:, 0])
    assert got.shape == (6, 4, 4)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_relaxations_differ(data):
    logits, values, temp = data
    a = continuous_knn(logits, values, 3, relaxation="reference")
    b = continuous_knn(logits, values, 3, relaxation="paper", temperature=temp)
    torch.testing.assert_close(a[:, 0], b[:, 0])
    assert (a[:, 1:] - b[:, 1:]).abs().max() > 1e-3


@pytest.mark.parametrize("relaxation", ["reference", "paper"])
def test_gradcheck(data, relaxation):
    logits, values, temp = data
    logits = logits[:3].clone().requires_grad_()
    values = values.clone().requires_grad_()
    temp = temp[:3].clone().requires_grad_()
    fn = lambda l, v, t: continuous_knn(l, v, 3, relaxation=relaxation, temperature=t)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (logits, values, temp))


def test_hard_is_topk_gather(data):
    logits, values, _ = data
    got = continuous_knn(logits, values, 5, relaxation="hard")
    idx = logits.topk(5, dim=-1).indices
    torch.testing.assert_close(got, values[idx])


def test_paper_reaches_hard_knn_at_small_temperature():
    g = torch.Generator().manual_seed(1)
    # distinct distances with gaps >= 0.5 >> T
    d = torch.stack([torch.randperm(30, generator=g) for _ in range(5)]).double()
    d = d + 0.5 * torch.rand(5, 30, generator=g, dtype=torch.float64)
    values = torch.randn(30, 3, generator=g, dtype=torch.float64)
    temp = 1e-2  # gaps / T in [50, 150]: small weights stay representable in float64
    hard = continuous_knn(-d, values, 4, relaxation="hard")
    paper = continuous_knn(-d / temp, values, 4, relaxation="paper", temperature=temp)
    torch.testing.assert_close(paper, hard, rtol=0, atol=1e-9)
    # the released update does not: its 2nd neighbour is the mean of the two nearest (see docstring)
    ref = continuous_knn(-d / temp, values, 2, relaxation="reference")
    two = values[d.topk(2, largest=False).indices].mean(1)
    torch.testing.assert_close(ref[:, 1], two, rtol=0, atol=1e-6)


def test_log1mexp_exact_when_w_rounds_to_one():
    # float32: w = softmax([0, −40])[0] rounds to 1, yet log(1 − w) = log(w₂/(w₁+w₂)) ≈ −40
    logits = torch.tensor([[0.0, -40.0]], requires_grad=True)
    assert torch.log_softmax(logits, -1)[0, 0].item() == 0.0  # torch rounds log w to 0
    logw = _masked_log_softmax(logits)
    assert logw.exp()[0, 0].item() == 1.0
    naive = torch.log(1 - logw.exp())
    assert torch.isneginf(naive[0, 0])
    exact = log1mexp(logw)
    assert logw[0, 0].item() < 0  # not rounded to 0
    assert exact[0, 0].item() == pytest.approx(-40.0, rel=1e-5)
    # through continuous_knn (released update): the 2nd neighbour is the exact mean, not NaN
    z = continuous_knn(logits, torch.eye(2), 2)
    torch.testing.assert_close(z[0, 1], torch.tensor([0.5, 0.5]))
    assert exact[0, 1].item() == pytest.approx(math.log1p(-math.exp(-40.0)), abs=1e-12)
    exact.sum().backward()
    assert torch.isfinite(logits.grad).all()


def _exact_reference_knn(logits: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """The released update in float64 with ``1 − w`` of the largest entry taken as the others'
    share of the row's sum (exact even where ``w`` rounds to 1); every other entry has ``w ≤ ½``."""
    out = np.zeros((logits.shape[0], k, values.shape[1]))
    for i, a in enumerate(logits.copy()):
        for t in range(k):
            e = np.exp(a - a.max())
            top = int(np.argmax(a))
            w = e / e.sum()
            out[i, t] = w @ values
            one_minus = 1.0 - w
            others = np.delete(e, top).sum()
            one_minus[top] = others / (others + e[top])
            with np.errstate(divide="ignore"):
                a = a + np.log(one_minus)
    return out


@pytest.mark.parametrize("gap", [5.0, 30.0, 50.0, 80.0, 120.0, 300.0])
def test_float32_sharp_rows_match_float64(gap):
    # a clear nearest candidate `gap` above the rest: at 5 and 30 the later steps run in the
    # linear domain, at 50 and 80 the others' share is below sqrt(tiny) and the row is recomputed
    # in the log domain; either way float32 must agree with the exact float64 formulas
    g = torch.Generator().manual_seed(4)
    base = torch.randn(16, 40, generator=g, dtype=torch.float64)
    base[:, 0] = base[:, 1:].max(dim=1).values + gap
    values = torch.randn(40, 3, generator=g, dtype=torch.float64)
    ref = _exact_reference_knn(base.numpy(), values.numpy(), 4)
    got = continuous_knn(base.float(), values.float(), 4)
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gaps", [(150.0, 250.0), (0.0, 400.0), (90.0, 0.0), (600.0, 30.0)])
def test_float32_tiered_rows_match_float64(gaps):
    # the three largest logits of every row are separated by large gaps (or tie; below 700, where
    # the float64 reference itself underflows), so each step's weights live at a scale where the
    # others' exp() underflows against the previous maximum
    g = torch.Generator().manual_seed(5)
    base = torch.randn(12, 50, generator=g, dtype=torch.float64)
    top = base[:, 3:].max(dim=1).values
    base[:, 2] = top + 3.0
    base[:, 1] = base[:, 2] + gaps[1]
    base[:, 0] = base[:, 1] + gaps[0]
    values = torch.randn(50, 3, generator=g, dtype=torch.float64)
    ref = _exact_reference_knn(base.numpy(), values.numpy(), 4)
    got = continuous_knn(base.float(), values.float(), 4)
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=1e-4, atol=1e-5)
    got64 = continuous_knn(base, values, 4)
    np.testing.assert_allclose(got64.numpy(), ref, rtol=1e-9, atol=1e-11)


def test_log1mexp_regimes_and_bounded_gradient():
    x = torch.tensor([-math.inf, -50.0, -2.0, math.log(0.5), -0.3, -1e-9, 0.0], dtype=torch.float64)
    x.requires_grad_()
    y = log1mexp(x)
    want = [0.0, math.log1p(-math.exp(-50)), math.log1p(-math.exp(-2)), math.log(0.5),
            math.log(-math.expm1(-0.3)), math.log(-math.expm1(-1e-9)), -math.inf]  # fmt: skip
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12)
    y[:-1].sum().backward(retain_graph=True)
    assert torch.isfinite(x.grad).all()
    x.grad = None
    y[-1].backward()  # x = 0: true gradient is −inf; guarded to −1/1e-7
    assert x.grad[-1].item() == pytest.approx(-1e7, rel=1e-6)
    assert x.grad[:-1].abs().max() == 0


def test_gradient_bounded_near_w_one():
    logits = torch.tensor([[0.0, -30.0, -31.0, -60.0]], dtype=torch.float32, requires_grad=True)
    values = torch.randn(4, 2)
    out = continuous_knn(logits, values, 3)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().max() < 1e8


def test_neg_inf_masking():
    logits = torch.tensor(
        [[0.3, -math.inf, 1.0, -0.5], [-math.inf] * 4, [2.0, -math.inf, -math.inf, -math.inf]],
        dtype=torch.float64,
        requires_grad=True,
    )
    values = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = continuous_knn_weights(logits, 3)
    assert (w[0, :, 1] == 0).all()
    torch.testing.assert_close(w[0].sum(-1), torch.ones(3, dtype=torch.float64))
    assert (w[1] == 0).all()  # fully masked row: all-zero weights, neighbours are zero vectors
    torch.testing.assert_close(w[2, 0], torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))
    assert (w[2, 1:] == 0).all()  # ran out of candidates after step 1
    z = continuous_knn(logits, values, 3)
    assert (z[1] == 0).all()
    z.sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(values.grad).all()
    assert (logits.grad[1] == 0).all()
    # the masked problem equals the problem without the masked candidate
    keep = [0, 2, 3]
    sub = continuous_knn(logits[0:1, keep].detach(), values[keep].detach(), 3)
    torch.testing.assert_close(z[0:1].detach(), sub)
    hard = continuous_knn_weights(logits.detach(), 2, relaxation="hard")
    assert (hard[1] == 0).all() and (hard[2, 1] == 0).all()


def test_batched_and_broadcast_values(data):
    logits, values, _ = data
    lb = torch.stack([logits, logits.flip(0)])  # (2, Q, M)
    z = continuous_knn(lb, values, 2)
    torch.testing.assert_close(z[1], continuous_knn(logits.flip(0), values, 2))
    zt = continuous_knn(
        lb.transpose(1, 2).contiguous().transpose(1, 2), values, 2
    )  # non-contiguous
    torch.testing.assert_close(z, zt)


def test_module_equals_function(data):
    logits, values, temp = data
    for rel in ("reference", "paper", "hard"):
        mod = ContinuousKNN(3, relaxation=rel)
        t = temp if rel == "paper" else None
        torch.testing.assert_close(
            mod(logits, values, t), continuous_knn(logits, values, 3, relaxation=rel, temperature=t)
        )
    assert "k=3" in repr(ContinuousKNN(3))


def test_errors(data):
    logits, values, _ = data
    with pytest.raises(InputError, match="temperature"):
        continuous_knn(logits, values, 2, relaxation="paper")
    with pytest.raises(InputError, match="relaxation"):
        continuous_knn(logits, values, 2, relaxation="soft")
    with pytest.raises(InputError, match="larger than the number of candidates"):
        continuous_knn(logits, values, 10)
    with pytest.raises(InputError, match="values"):
        continuous_knn(logits, values[:5], 2)
