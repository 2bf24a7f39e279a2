"""The continuous (differentiable) k-nearest-neighbour relaxation of N³ (Plötz & Roth, NeurIPS 2018, Sec. 3).

For ``t = 1..k``: ``w_t = softmax(a_t)`` over the candidates, neighbour ``t`` is ``w_t @ values``, and the
logits are updated so that already selected candidates lose weight. Three update rules
(``relaxation``):

``"reference"`` (default)
    ``a_{t+1} = a_t + log(1 − w_t)`` on the *temperature-scaled* logits ``a = −d / T``; this is what the
    authors' released code does, and the published checkpoints were trained with it. Even as ``T → 0`` it
    does not become the hard kNN: the first update lowers the nearest candidate's logit to about the
    second's, so neighbour 2 is the mean of the two nearest (and so on).
``"paper"``
    Eq. 9 of the paper: ``α_{t+1} = α_t + log(1 − w_t)`` on the *unscaled* logits ``α = −d`` with
    ``w_t = softmax(α_t / T)``; in terms of the scaled logits ``a_{t+1} = a_t + log(1 − w_t) / T``.
    Needs ``temperature``. Converges to the hard kNN as ``T → 0``.
``"hard"``
    Exact top-k: ``w_t`` is one-hot on the candidate with the ``t``-th largest logit (no gradient to the
    logits; ties broken by ``torch.topk``). For ablations.

``log(1 − w)`` is computed from ``log w`` (:func:`log1mexp`), so it stays exact (large and negative) when
``w`` rounds to 1 in floating point; its gradient is bounded near ``w → 1`` the way the released code
does it (the backward pass uses ``log(−expm1(x) + 1e-7)``; the forward value is exact).

Masking: a logit of ``−inf`` removes a candidate (weight exactly 0, no gradient). A row whose logits are
all ``−inf`` (or that runs out of candidates before step ``k``) gets all-zero weights, so its neighbour
is the zero vector, and zero gradients, rather than NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from knnlab.errors import InputError

__all__ = [
    "RELAXATIONS",
    "ContinuousKNN",
    "continuous_knn",
    "continuous_knn_weights",
    "log1mexp",
]

RELAXATIONS = ("reference", "paper", "hard")
_LOG_HALF = math.log(0.5)
# just above the log of the smallest normal number of each dtype: exp() below returns subnormals
_EXP_FLOOR = {
    dt: math.log(torch.finfo(dt).tiny) + 0.5
    for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
}


def _linear_floors(dtype: torch.dtype) -> tuple[float, float]:
    """``(keep, row)`` of the linear-domain relaxation, as logs: entries more than ``−keep`` below a
    row's ``k``-th largest logit are dropped, and a row's linear weights are 0 where its maximum
    is more than ``−row`` above it (0.3 and 0.35 of ``log tiny``: 26 and 31 for float32)."""
    log_tiny = math.log(torch.finfo(dtype).tiny)
    return 0.3 * log_tiny, 0.35 * log_tiny


def log1mexp(x: Tensor, expm1_guard: float = 1e-7) -> Tensor:
    """``log(1 − exp(x))`` for ``x <= 0``, exact in both regimes (Mächler 2012), gradient bounded.

    For ``x < log ½`` uses ``log1p(−exp(x))``, otherwise ``log(−expm1(x))``. In the second regime the
    gradient is that of ``log(−expm1(x) + expm1_guard)`` (at most ``1 / expm1_guard`` in magnitude, as in
    the released N³ code) while the value stays exact; ``x = 0`` gives ``−inf``, ``x = −inf`` gives 0.
    """
    x = x.clamp(max=0.0)
    small = x < _LOG_HALF
    # Evaluate each branch only where it is used; the other positions get a harmless stand-in so that
    # no inf/NaN reaches the gradient through torch.where.
    x_small = torch.where(small, x, torch.full_like(x, 2 * _LOG_HALF))
    x_big = torch.where(small, torch.full_like(x, 0.5 * _LOG_HALF), x)
    y_small = torch.log1p(-torch.exp(x_small))
    em1 = -torch.expm1(x_big)
    y_fw = torch.log(em1).detach()
    y_bw = torch.log(em1 + expm1_guard)
    y_big = y_fw + (y_bw - y_bw.detach())
    return torch.where(small, y_small, y_big)


def _masked_log_softmax(a: Tensor) -> Tensor:
    """``log_softmax`` over the last axis, exact for the largest entry, ``−inf``-safe.

    ``log w_max = −log1p(Σ_{j≠max} exp(a_j − a_max))`` keeps the tiny negative value that
    ``torch.log_softmax`` rounds to 0 when ``w_max`` rounds to 1, so that ``log(1 − w_max)`` is exact.
    Rows that are all ``−inf`` give all ``−inf`` (weights 0).
    """
    dead = torch.isneginf(a).all(dim=-1, keepdim=True)
    a = torch.where(dead, torch.zeros_like(a), a)
    top = a.detach().argmax(dim=-1, keepdim=True)
    m = a.gather(-1, top)  # not detached: the gradient flows through a_max
    e = torch.exp(a - m).scatter(-1, top, 0.0)  # exp(a_j − a_max) with the max itself left out
    logw = a - m - torch.log1p(e.sum(dim=-1, keepdim=True))
    return torch.where(dead, torch.full_like(logw, -math.inf), logw)


def _check(logits: Tensor, k: int, relaxation: str, temperature) -> None:
    if relaxation not in RELAXATIONS:
        raise InputError(f"`relaxation`={relaxation!r} is not one of {RELAXATIONS}")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"`k`={k!r} must be a positive integer")
    if logits.dim() < 2:
        raise InputError(f"`logits` must be (..., Q, M); got shape {tuple(logits.shape)}")
    if k > logits.shape[-1]:
        raise InputError(f"`k`={k} is larger than the number of candidates M={logits.shape[-1]}")
    if relaxation == "paper" and temperature is None:
        raise InputError(
            '`relaxation`="paper" needs `temperature` (the T in logits = −d / T, broadcastable to '
            "`logits`, e.g. (..., Q, 1)); pass it, or use relaxation='reference'"
        )


def continuous_knn_weights(
    logits: Tensor,
    k: int,
    *,
    relaxation: str = "reference",
    temperature: Tensor | float | None = None,
) -> Tensor:
    """Weights of the ``k`` relaxed neighbours: ``logits (..., Q, M)`` → ``(..., Q, k, M)``.

    Row ``t`` sums to 1 over ``M`` (0 for rows without any finite logit). See the module docstring.
    """
    _check(logits, k, relaxation, temperature)
    if relaxation == "hard":
        top = logits.detach().topk(k, dim=-1).indices  # (..., Q, k)
        w = torch.zeros(
            *logits.shape[:-1], k, logits.shape[-1], dtype=logits.dtype, device=logits.device
        )
        w.scatter_(-1, top.unsqueeze(-1), 1.0)
        alive = torch.isfinite(logits.detach().gather(-1, top)).unsqueeze(-1)
        return w * alive
    temp = torch.as_tensor(1.0 if temperature is None else temperature, dtype=logits.dtype)
    temp = temp.to(logits.device)
    return _RelaxedKNN.apply(logits, temp, k, relaxation == "paper")


def _floored_exp(x: Tensor, out: Tensor | None = None) -> Tensor:
    """``exp(x)`` for ``x <= 0`` without subnormal results, which x86 computes tens of times
    slower: arguments below :data:`_EXP_FLOOR` give the smallest normal numbers instead (values
    below about 2e-38, where the exact ones are smaller still); ``−inf`` still gives exactly 0."""
    masked = torch.isneginf(x)
    y = torch.clamp(x, min=_EXP_FLOOR.get(x.dtype, -math.inf), out=out).exp_()
    if bool(masked.any()):
        y.masked_fill_(masked, 0.0)
    return y


def _relaxed_weights(
    a: Tensor,
    temp: Tensor,
    k: int,
    paper: bool,
    *,
    out: Tensor | None = None,
    work: Tensor | None = None,
    top: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """The forward values of :class:`_RelaxedKNN`: ``(..., M)`` → ``(..., k, M)``.

    For ``"reference"`` the update ``a_{t+1} = a_t + log(1 − w_t)`` keeps the order of all entries
    but the step's maximum (``w (1 − w)`` increases on ``[0, ½]``), so the maximum of step ``t`` is
    among the ``t + 1`` largest logits and every step's maximum is among the ``k`` largest. Those
    ``k`` entries are followed in the log domain (``k`` numbers per row: their logits relative to
    the ``k``-th largest, where ``log(1 − w)`` is ``log1p(−w)`` off the maximum and
    ``log S' − log(1 + S')`` at it, exact however sharp the row is). All other entries stay in the
    linear domain after one ``exp`` relative to the ``k``-th largest logit: ``u ← u (1 − w)``, one
    fused pass per step, exact since their ``w ≤ ½``. Entries up to ``0.3·|log tiny|`` below the
    ``k``-th largest (26 for float32) and no further are kept, and a row's linear weights are zero
    where its maximum is more than ``0.35·|log tiny|`` (31) above it: both leave out weights below
    ~10⁻¹¹ (float32) of the row's largest, and keep every value and product of the steps a normal
    number (x86 computes exp() of −inf and subnormals much slower). Rows with fewer than ``k``
    finite logits and every ``"paper"`` call go through :func:`_relaxed_weights_log`.

    ``out`` (contiguous, ``(..., k, M)``) receives the weights and ``work`` (contiguous, the shape
    of ``a``) is scratch space; callers that loop over chunks pass the same buffers every time,
    which saves the page faults of fresh large allocations. ``top``: the rows' ``a.topk(k)`` when
    the caller has it already.
    """
    if paper:
        return _relaxed_weights_log(a, temp, k, paper)
    lead, m_ = a.shape[:-1], a.shape[-1]
    a2 = a.reshape(-1, m_)
    if out is None:
        out = a2.new_empty(a2.shape[0], k, m_)
    w_all = out.view(a2.shape[0], k, m_)
    keep_floor, c_floor = _linear_floors(a.dtype)
    # (R, k), descending: every step's maximum is among them
    top_vals, cand = a2.topk(k, dim=-1) if top is None else (t.reshape(-1, k) for t in top)
    ref = top_vals[:, k - 1 :]  # (R, 1): the k-th largest logit
    redo = torch.isneginf(ref)  # fewer than k finite candidates: the log-domain path
    ref = ref.masked_fill(redo, 0.0)
    u = torch.sub(a2, ref, out=work.view_as(a2) if work is not None else None)
    u_floor = math.exp(keep_floor)
    # exp of clamped arguments, then the floor (and −inf, masked) to exactly 0: exp(−inf) and
    # subnormal results take a slow path on x86, a clamp and a threshold are cheap passes
    torch.threshold_(u.clamp_min_(keep_floor).exp_(), u_floor * (1 + 1e-3), 0.0)
    u.scatter_(-1, cand, 0.0)  # the k largest are followed in the log domain
    b = top_vals - ref  # (R, k) ≥ 0: their logits relative to the k-th largest
    for t in range(k):
        log_rest = u.sum(dim=-1, keepdim=True).log()  # log Σ of the linear entries
        b_max, j = b.max(dim=-1, keepdim=True)
        b_others = torch.cat([b.scatter(-1, j, -math.inf), log_rest], dim=-1)
        log_others = torch.logsumexp(b_others, dim=-1, keepdim=True)  # log S' + b_max
        log_z = torch.logaddexp(b_max, log_others)  # log of the row's sum
        c = torch.exp(-log_z).masked_fill_(-log_z < c_floor, 0.0)
        w = w_all[:, t]
        torch.mul(u, c, out=w)
        w_top = _floored_exp(b - log_z)
        w.scatter_(-1, cand, w_top)
        if t + 1 < k:
            torch.addcmul(u, u, w, value=-1.0, out=u)  # u (1 − w); 0 stays 0 at the k largest
            b = b + torch.log1p(-w_top)  # off the maximum, w ≤ ½: exact
            b.scatter_(-1, j, b_max + log_others - log_z)  # log(w_max · S' / (1 + S'))
    if bool(redo.any()):
        rows = redo.squeeze(-1).nonzero().squeeze(-1)
        w_all[rows] = _relaxed_weights_log(a2[rows], temp, k, paper)
    return out.view(*lead, k, m_)


def _relaxed_weights_log(a: Tensor, temp: Tensor, k: int, paper: bool) -> Tensor:
    """The forward values of :class:`_RelaxedKNN` in the log domain: ``(..., M)`` → ``(..., k, M)``.

    Per step: ``e = exp(a − a_max)`` with the max's own entry set aside, ``S' = Σ_{j≠max} e_j``,
    ``w = e / (1 + S')`` (the max gets ``1 / (1 + S')``); then ``log(1 − w_j) = log1p(−w_j)`` for the
    others (``w_j ≤ ½`` there, so it is exact) and ``log S' − log(1 + S')`` for the max, the same
    value :func:`_masked_log_softmax` and :func:`log1mexp` give. Rows without a finite logit get
    zero weights. Used for ``"paper"`` and for the rows that :func:`_relaxed_weights` cannot do
    exactly; the backward pass recomputes with ``_loop``.
    """
    m_ = a.shape[-1]
    out = a.new_empty(*a.shape[:-1], k, m_)
    a = a.clone()  # shifted and updated in place below
    e = torch.empty_like(a)  # exp(a − a_max), then log(1 − w)
    for t in range(k):
        top_v, top = a.max(dim=-1, keepdim=True)
        dead = torch.isneginf(top_v)
        any_dead = bool(dead.any())
        if any_dead:
            top_v = top_v.masked_fill(dead, 0.0)
        a.sub_(top_v)  # a row's softmax does not change under a shift
        _floored_exp(a, out=e)
        e.scatter_(-1, top, 0.0)
        # log S' from the others shifted by their own maximum: exact also where every other
        # entry underflows against the maximum (the case this path exists for)
        rest = a.scatter(-1, top, -math.inf)
        second = rest.amax(dim=-1, keepdim=True)
        rest.sub_(second.masked_fill(second.isneginf(), 0.0))
        log_s = second + _floored_exp(rest, out=rest).sum(dim=-1, keepdim=True).log()
        others = log_s.exp()  # S' (rounds to 0 where it is below the smallest float)
        total = others + 1.0
        w = out[..., t, :]
        torch.mul(e, total.reciprocal(), out=w)
        w.scatter_(-1, top, total.reciprocal())
        if any_dead:
            w.masked_fill_(dead, 0.0)
        if t + 1 < k:
            torch.neg(w, out=e).log1p_()
            e.scatter_(-1, top, log_s - torch.log1p(others))
            if paper:
                e.div_(temp)
            a.add_(e)
    return out


def _log1mexp_grad(x: Tensor, expm1_guard: float = 1e-7) -> Tensor:
    """d/dx of :func:`log1mexp` as :func:`log1mexp` defines it (guarded for ``x >= log ½``)."""
    small = x < _LOG_HALF
    guard = torch.where(small, torch.zeros_like(x), torch.full_like(x, expm1_guard))
    return -torch.exp(x) / (-torch.expm1(x) + guard)


class _RelaxedKNN(torch.autograd.Function):
    """The k-step loop with a hand-written backward that recomputes the forward.

    Autograd would keep ~15 tensors of the size of ``logits`` per step; this keeps only ``logits`` and
    ``T`` (and, during the backward pass, the ``k`` log-weights).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, temp: Tensor, k: int, paper: bool) -> Tensor:
        out = _relaxed_weights(logits, temp, k, paper)
        ctx.save_for_backward(logits, temp)
        ctx.k, ctx.paper = k, paper
        return out

    @staticmethod
    def _loop(a: Tensor, temp: Tensor, k: int, paper: bool) -> tuple[list[Tensor], list[Tensor]]:
        ws, logws = [], []
        for t in range(k):
            logw = _masked_log_softmax(a)  # Eqs. 8, 10
            ws.append(logw.exp())
            logws.append(logw)
            if t + 1 < k:
                step = log1mexp(logw)  # log(1 − w), Eq. 9
                a = a + (step / temp if paper else step)
        return ws, logws

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        logits, temp = ctx.saved_tensors
        k, paper = ctx.k, ctx.paper
        ws, logws = _RelaxedKNN._loop(logits, temp, k, paper)
        ga = torch.zeros_like(logits)  # dL/da_{t+1}
        gtemp = torch.zeros_like(logits) if paper and ctx.needs_input_grad[1] else None
        for t in reversed(range(k)):
            w, logw = ws[t], logws[t]
            glogw = g[..., t, :] * w  # through w = exp(log w)
            if t + 1 < k:  # a_{t+1} = a_t + c · log1mexp(log w_t), c = 1 or 1/T
                c_ga = ga / temp if paper else ga
                glogw = glogw + c_ga * _log1mexp_grad(logw)
                if gtemp is not None:
                    gtemp = gtemp - c_ga * log1mexp(logw) / temp
            # log-softmax backward, plus the identity path a_{t+1} <- a_t
            ga = ga + glogw - w * glogw.sum(dim=-1, keepdim=True)
        if gtemp is not None:
            gtemp = _sum_to(gtemp, temp.shape)
        return ga, gtemp, None, None


def _sum_to(x: Tensor, shape: torch.Size) -> Tensor:
    """Sum a broadcast gradient back to ``shape``."""
    while x.dim() > len(shape):
        x = x.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and x.shape[i] != 1:
            x = x.sum(i, keepdim=True)
    return x


def continuous_knn(
    logits: Tensor,
    values: Tensor,
    k: int,
    *,
    relaxation: str = "reference",
    temperature: Tensor | float | None = None,
) -> Tensor:
    """The ``k`` relaxed nearest neighbours of every query.

    Args:
        logits: ``(..., Q, M)``, already ``−distance / temperature``; ``−inf`` masks a candidate.
        values: ``(..., M, D)``, the candidates' values (broadcast over leading axes).
        k: number of neighbours.
        relaxation: ``"reference"`` (released code), ``"paper"`` (Eq. 9) or ``"hard"``.
        temperature: the ``T`` of the logits, needed by ``"paper"``; broadcastable to ``logits``.

    Returns:
        ``(..., Q, k, D)``: neighbour ``t`` of query ``q`` is ``Σ_m w_t[q, m] · values[m]``.
    """
    if values.dim() < 2 or values.shape[-2] != logits.shape[-1]:
        raise InputError(
            f"`values` must be (..., M, D) with M={logits.shape[-1]} as in `logits`; "
            f"got shape {tuple(values.shape)}"
        )
    w = continuous_knn_weights(logits, k, relaxation=relaxation, temperature=temperature)
    q, m = w.shape[-3], w.shape[-1]
    z = w.reshape(*w.shape[:-3], q * k, m) @ values  # (..., Q·k, D)
    return z.reshape(*z.shape[:-2], q, k, z.shape[-1])


class ContinuousKNN(nn.Module):
    """Module form of :func:`continuous_knn`; holds ``k`` and ``relaxation``."""

    def __init__(self, k: int, relaxation: str = "reference") -> None:
        super().__init__()
        if relaxation not in RELAXATIONS:
            raise InputError(f"`relaxation`={relaxation!r} is not one of {RELAXATIONS}")
        self.k = k
        self.relaxation = relaxation

    def forward(
        self, logits: Tensor, values: Tensor, temperature: Tensor | float | None = None
    ) -> Tensor:
        return continuous_knn(
            logits, values, self.k, relaxation=self.relaxation, temperature=temperature
        )

    def extra_repr(self) -> str:
        return f"k={self.k}, relaxation={self.relaxation!r}"
