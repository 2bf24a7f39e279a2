"""N³ aggregation on *sets* of points (Plötz & Roth, NeurIPS 2018, Sec. 3 and Sec. 5.3).

For correspondence classification the candidates of a match are all other matches of the same image
pair, not a window of an image grid. With embeddings ``e (B, N, E)`` and per-query inverse
temperatures ``τ (B, N, 1)``, the logits of query ``i`` are (Eq. 7, the released correspondence code
``non_local.py``, which multiplies by an *inverse* temperature for stability)

    ``a_ij = −‖e_i − e_j‖² · τ_i``  for ``j ≠ i``,   ``a_ii = −∞``  (self excluded),

and the ``k`` neighbours are ``z_t = Σ_j w_t[i, j] · x_j`` of :func:`~knnlab.n3.continuous_knn`.

Memory: the logits are ``B·N²`` floats (512 MB at N = 2000, batch 32). Queries are processed in
chunks of at most ``chunk_elements / (B·N)`` rows; under autograd each chunk is recomputed in the
backward pass (activation checkpointing), so only one chunk's ``(B, Q, N)`` logits exist at a time.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from knnlab.errors import InputError
from knnlab.n3.continuous_knn import (
    RELAXATIONS,
    _linear_floors,
    _relaxed_weights,
    continuous_knn,
)

__all__ = ["SetN3Aggregation", "set_n3_aggregate"]

DEFAULT_CHUNK_ELEMENTS = 1 << 23  # 8 Mi logits (32 MiB in float32) per chunk
# without autograd the chunks are made at most this large: the relaxation's passes over a chunk then
# run from cache (about 1.4× faster at N = 2000 than 8 Mi chunks on a 2-core EPYC)
INFERENCE_CHUNK_ELEMENTS = 1 << 20


def _chunk(
    x: Tensor,
    e: Tensor,
    inv_temp: Tensor,
    q0: int,
    q1: int,
    k: int,
    relaxation: str,
    candidates: int | None = None,
) -> Tensor:
    """Neighbours of queries ``q0 .. q1-1``: ``(B, Q, k, C)``."""
    eq = e[:, q0:q1]  # (B, Q, E)
    sq_all = (e * e).sum(-1)  # (B, N)
    d = torch.baddbmm(sq_all.unsqueeze(1), eq, e.transpose(1, 2), alpha=-2.0)
    d = d + sq_all[:, q0:q1].unsqueeze(-1)  # (B, Q, N): ‖e_q‖² + ‖e_j‖² − 2 e_q·e_j
    rows = torch.arange(q1 - q0, device=e.device)
    self_mask = torch.zeros(q1 - q0, e.shape[1], dtype=torch.bool, device=e.device)
    self_mask[rows, rows + q0] = True
    if candidates is None:
        if torch.is_grad_enabled() and (d.requires_grad or inv_temp.requires_grad):
            logits = -d.clamp_min(0.0) * inv_temp[:, q0:q1]  # (B, Q, N)
            logits = logits.masked_fill(self_mask, float("-inf"))
        else:  # the same values without four temporaries of the chunk's size
            logits = d.clamp_min_(0.0).mul_(-inv_temp[:, q0:q1]).masked_fill_(self_mask, -math.inf)
        return continuous_knn(logits, x, k, relaxation=relaxation)
    # only the `candidates` nearest in the embedding (self excluded) take part; their distances
    # are recomputed from the gathered embeddings so that autograd never holds a (B, Q, N) tensor
    with torch.no_grad():
        near = d.masked_fill(self_mask, float("inf")).topk(candidates, dim=-1, largest=False)
    b, q, m = near.indices.shape
    flat = near.indices.reshape(b, q * m, 1)
    ec = e.gather(1, flat.expand(-1, -1, e.shape[-1])).reshape(b, q, m, -1)  # (B, Q, M, E)
    xc = x.gather(1, flat.expand(-1, -1, x.shape[-1])).reshape(b, q, m, -1)  # (B, Q, M, C)
    dc = (eq.unsqueeze(2) - ec).pow(2).sum(-1)  # (B, Q, M)
    logits = (-dc * inv_temp[:, q0:q1]).unsqueeze(2)  # (B, Q, 1, M)
    return continuous_knn(logits, xc, k, relaxation=relaxation)[:, :, 0]  # (B, Q, k, C)


# without autograd a block whose relaxation weights are non-zero on at most this share of its
# entries is aggregated over those entries only (a trained network's rows are that sharp)
SPARSE_SHARE = 0.05


def _sparse_block(
    d: Tensor, top_vals: Tensor, cand: Tensor, k: int, xi: Tensor, floor: float
) -> Tensor | None:
    """The ``"reference"`` relaxation of the logits ``d (Q, M)`` and its neighbours over ``xi (M, C)``
    restricted to the entries at most ``-floor`` below each row's ``k``-th largest logit: the entries
    on which :func:`~knnlab.n3.continuous_knn._relaxed_weights` puts a non-zero weight, so the
    result is the same, from segment sums and one sparse (CSR) product per step.

    ``top_vals, cand (Q, k)``: the ``k`` largest logits of each row and their columns, all finite.
    Returns ``(Q, k, C)``, or None when more than :data:`SPARSE_SHARE` of the entries are kept.
    """
    q, m_ = d.shape
    ref = top_vals[:, k - 1 :]  # (Q, 1)
    keep = (d >= ref + floor).view(-1)
    if int(keep.sum()) > SPARSE_SHARE * q * m_:
        return None
    flat = torch.nonzero(keep).squeeze(1)  # row-major order
    rows = torch.div(flat, m_, rounding_mode="floor")
    cols = flat - rows * m_
    counts = torch.bincount(rows, minlength=q)  # ≥ k: the k largest are kept
    crow = torch.zeros(q + 1, dtype=torch.int64, device=d.device)
    torch.cumsum(counts, 0, out=crow[1:])
    match = cols.unsqueeze(1) == cand.index_select(0, rows)  # (nnz, k)
    top_pos = match.any(dim=1).nonzero().squeeze(1)  # where the k largest sit, and which they are
    top_flat = rows.index_select(0, top_pos) * k + match[top_pos].to(torch.int8).argmax(dim=1)
    u = d.view(-1).index_select(0, flat) - ref.view(-1).index_select(0, rows)
    u.clamp_max_(0.0).exp_()  # ≤ 1 off the k largest
    u[top_pos] = 0.0  # the k largest: in the log domain
    b = top_vals - ref  # (Q, k) ≥ 0: the k largest relative to the k-th
    out = xi.new_empty(q, k, xi.shape[1])
    c_floor = _linear_floors(d.dtype)[1]
    for t in range(k):
        log_rest = torch.segment_reduce(u, "sum", lengths=counts).log().unsqueeze(1)
        b_max, j = b.max(dim=-1, keepdim=True)
        b_others = torch.cat([b.scatter(-1, j, -math.inf), log_rest], dim=-1)
        log_others = torch.logsumexp(b_others, dim=-1, keepdim=True)
        log_z = torch.logaddexp(b_max, log_others)
        c = torch.exp(-log_z).masked_fill_(-log_z < c_floor, 0.0)  # (Q, 1)
        w = u * c.view(-1).index_select(0, rows)  # (nnz,)
        w_top = torch.exp(b - log_z)  # (Q, k)
        w[top_pos] = w_top.view(-1).index_select(0, top_flat)
        with warnings.catch_warnings():  # CSR tensors are "beta": a warning on first use
            warnings.simplefilter("ignore")
            out[:, t] = torch.sparse_csr_tensor(crow, cols, w, size=(q, m_)) @ xi
        if t + 1 < k:
            u.addcmul_(u, w, value=-1.0)  # u (1 − w); 0 stays 0 at the k largest
            b = b + torch.log1p(-w_top)
            b.scatter_(-1, j, b_max + log_others - log_z)
    return out


def _aggregate_no_grad(x: Tensor, e: Tensor, inv_temp: Tensor, k: int, chunk: int) -> Tensor:
    """The ``"reference"`` relaxation over all other points without autograd.

    One pair at a time in blocks of ``chunk // N`` queries (plain matrix products, which run
    faster than batched ones of the same size), reusing three scratch buffers (logits, the
    relaxation's work space and the ``k`` weight rows) so that no block allocates, and
    page-faults, fresh large memory. A block whose weights are non-zero on few entries (sharp
    rows: a trained network's) is aggregated over those entries only (:func:`_sparse_block`)."""
    b, n, _ = x.shape
    rows = max(1, min(n, chunk // n))
    x = x.contiguous()  # the sparse product reads rows of x
    sq = (e * e).sum(-1)  # (B, N)
    logits_buf = e.new_empty(rows * n)
    work_buf = torch.empty_like(logits_buf)
    w_buf = e.new_empty(rows * k * n)
    one = e.new_ones(())
    floor = _linear_floors(e.dtype)[0]  # the entries _relaxed_weights keeps
    out = x.new_empty(b, n, k, x.shape[-1])
    for i in range(b):
        ei, sqi = e[i], sq[i]
        for q0 in range(0, n, rows):
            q1 = min(n, q0 + rows)
            q = q1 - q0
            d = logits_buf[: q * n].view(q, n)
            torch.addmm(sqi.unsqueeze(0), ei[q0:q1], ei.t(), alpha=-2.0, out=d)
            d.add_(sqi[q0:q1].unsqueeze(-1)).clamp_min_(0.0).mul_(-inv_temp[i, q0:q1])
            d.diagonal(offset=q0).fill_(-math.inf)  # self excluded
            top_vals, cand = d.topk(k, dim=-1)
            if not bool(torch.isneginf(top_vals[:, -1]).any()):
                z = _sparse_block(d, top_vals, cand, k, x[i], floor)
                if z is not None:
                    out[i, q0:q1] = z
                    continue
            w = _relaxed_weights(
                d, one, k, False, out=w_buf[: q * k * n].view(q, k, n),
                work=work_buf[: q * n].view(q, n), top=(top_vals, cand),
            )  # fmt: skip
            torch.mm(w.view(q * k, n), x[i], out=out[i, q0:q1].view(q * k, -1))
    return out


def set_n3_aggregate(
    x: Tensor,
    embedding: Tensor,
    inv_temperature: Tensor,
    k: int,
    *,
    relaxation: str = "reference",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    candidates: int | None = None,
) -> Tensor:
    """The ``k`` relaxed nearest neighbours of every point among the other points of its set.

    Args:
        x: ``(B, N, C)`` values that are aggregated.
        embedding: ``(B, N, E)`` the space in which distances are measured.
        inv_temperature: ``(B, N, 1)`` (or ``(B, N)``) inverse temperature ``τ_i`` of each query.
        k: neighbours, ``1 ≤ k ≤ N − 1``.
        relaxation: ``"reference"`` (released), or ``"hard"`` (exact top-k). ``"paper"`` needs a
            temperature, not an inverse one, and is not offered here.
        chunk_elements: bound on ``B · Q · N`` logits held at once (without autograd at most
            ``INFERENCE_CHUNK_ELEMENTS``, which keeps the chunks in cache).
        candidates: None (default, as released): every other point is a candidate. An integer
            ``M``: only each query's ``M`` nearest points in the embedding take part, an
            approximation (the weights of the others are set to 0) that makes the relaxation cost
            ``O(B·N·M)`` instead of ``O(B·N²)``; the distances themselves are still ``O(B·N²·E)``.

    Returns:
        ``(B, N, k, C)``: ``z[b, i, t] = Σ_{j≠i} w_t[b, i, j] · x[b, j]``.
    """
    if x.dim() != 3 or embedding.dim() != 3 or x.shape[:2] != embedding.shape[:2]:
        raise InputError(
            f"`x` (B, N, C) and `embedding` (B, N, E) must share B and N; "
            f"got {tuple(x.shape)} and {tuple(embedding.shape)}"
        )
    b, n, _ = x.shape
    if inv_temperature.dim() == 2:
        inv_temperature = inv_temperature.unsqueeze(-1)
    if inv_temperature.shape != (b, n, 1):
        raise InputError(
            f"`inv_temperature` must be (B, N, 1) = {(b, n, 1)}; got {tuple(inv_temperature.shape)}"
        )
    if relaxation not in RELAXATIONS or relaxation == "paper":
        raise InputError(f"`relaxation`={relaxation!r}: use 'reference' or 'hard'")
    if not isinstance(k, int) or not 1 <= k <= n - 1:
        raise InputError(f"`k`={k!r}: must be an integer in [1, N − 1] = [1, {n - 1}]")
    if chunk_elements < 1:
        raise InputError(f"`chunk_elements`={chunk_elements}: must be positive")
    if candidates is not None and not k <= candidates <= n - 1:
        raise InputError(
            f"`candidates`={candidates}: must be None or in [k, N − 1] = [{k}, {n - 1}]"
        )
    if candidates is not None and candidates == n - 1:
        candidates = None  # every other point: the exact path
    grad = torch.is_grad_enabled() and (
        x.requires_grad or embedding.requires_grad or inv_temperature.requires_grad
    )
    if not grad:
        chunk_elements = min(chunk_elements, INFERENCE_CHUNK_ELEMENTS)
    rows = max(1, min(n, chunk_elements // max(b * n, 1)))
    if not grad and candidates is None and relaxation == "reference":
        return _aggregate_no_grad(x, embedding, inv_temperature, k, chunk_elements)
    outs = []
    for q0 in range(0, n, rows):
        q1 = min(n, q0 + rows)
        if grad and rows < n:
            z = checkpoint(
                _chunk, x, embedding, inv_temperature, q0, q1, k, relaxation, candidates,
                use_reentrant=False,
            )  # fmt: skip
        else:
            z = _chunk(x, embedding, inv_temperature, q0, q1, k, relaxation, candidates)
        outs.append(z)
    return torch.cat(outs, dim=1)


class SetN3Aggregation(nn.Module):
    """Module form of :func:`set_n3_aggregate`: ``(x, e, τ)`` → ``[x, z₁, …, z_k]`` ``(B, N, (k+1)·C)``.

    As in the released correspondence network the neighbours are concatenated as they are (not as
    differences ``z − x``), so ``C = 128 / (k + 1)`` channels come back as 128.
    """

    def __init__(
        self,
        k: int = 3,
        relaxation: str = "reference",
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        candidates: int | None = None,
    ) -> None:
        super().__init__()
        self.k, self.relaxation, self.chunk_elements = k, relaxation, chunk_elements
        self.candidates = candidates

    def forward(self, x: Tensor, embedding: Tensor, inv_temperature: Tensor) -> Tensor:
        z = set_n3_aggregate(
            x, embedding, inv_temperature, self.k,
            relaxation=self.relaxation, chunk_elements=self.chunk_elements,
            candidates=self.candidates,
        )  # fmt: skip
        b, n, k, c = z.shape
        return torch.cat([x, z.reshape(b, n, k * c)], dim=-1)

    def extra_repr(self) -> str:
        return f"k={self.k}, relaxation={self.relaxation!r}, candidates={self.candidates}"
