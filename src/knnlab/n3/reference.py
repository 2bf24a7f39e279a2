"""REFERENCE ONLY: the straightforward gather implementation of :func:`knnlab.n3.n3_aggregate`.

It materialises every candidate patch of every query, ``(B, Q, M, E·p²)`` and ``(B, Q, M, C·p²)``
floats (about 7.5 GB each for one 8-channel 512×512 map at the defaults), so it is only meant as the
oracle in tests and as the baseline in ``benchmarks/n3.py``. Use :func:`knnlab.n3.n3_aggregate`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from knnlab.n3.continuous_knn import continuous_knn_weights
from knnlab.n3.patches import PatchGrid

__all__ = ["n3_aggregate_gather"]


def n3_aggregate_gather(
    x: Tensor,
    embedding: Tensor,
    log_temperature: Tensor | None,
    k: int,
    *,
    patch_size: int = 10,
    stride: int = 5,
    window: int = 15,
    relaxation: str = "reference",
    distance_norm: nn.Module | None = None,
    log_temperature_offset: float = 0.0,
) -> Tensor:
    """Same contract as :func:`knnlab.n3.aggregate.n3_aggregate`, computed by gathering patches."""
    b, c, h, w = x.shape
    grid = PatchGrid(h, w, patch_size, stride, window)
    top, bottom, left, right = grid.pad
    p, s = patch_size, stride

    def patches(t: Tensor) -> Tensor:  # (B, ch, H, W) -> (B, Q, ch·p²)
        t = F.pad(t, (left, right, top, bottom))
        return F.unfold(t, p, stride=s).transpose(1, 2)

    xp, ep = patches(x), patches(embedding)
    idx = grid.flat_candidates().to(x.device)  # (Q, M)
    q, m = idx.shape

    # squared L2 over all E·p² entries, as |e_q|² + |e_c|² − 2 e_c·e_q
    ec = ep[:, idx]  # (B, Q, M, E·p²): the big gather
    sq = (ep * ep).sum(-1)  # (B, Q)
    d = sq.unsqueeze(2) + sq[:, idx] - 2 * (ec @ ep.unsqueeze(-1)).squeeze(-1)  # (B, Q, M)
    del ec
    a = -d
    if distance_norm is not None:
        a = distance_norm(a.reshape(b, 1, q * m)).reshape(b, q, m)
    if log_temperature is None:
        log_t = torch.zeros(b, q, 1, dtype=x.dtype, device=x.device)
    else:
        log_t = patches(log_temperature).mean(-1, keepdim=True)  # (B, Q, 1)
    temperature = torch.exp(log_t + log_temperature_offset)
    logits = a / temperature
    wts = continuous_knn_weights(logits, k, relaxation=relaxation, temperature=temperature)
    xc = xp[:, idx]  # (B, Q, M, C·p²): the other big gather
    z = wts @ xc  # (B, Q, k, C·p²)

    # fold each neighbour volume back, averaging overlapping patches, and crop the padding
    hp, wp = grid.padded_size
    z = z.permute(0, 2, 3, 1).reshape(b, k * c * p * p, q)
    out = F.fold(z, (hp, wp), p, stride=s)
    ones = torch.ones(1, p * p, q, dtype=x.dtype, device=x.device)
    out = out / F.fold(ones, (hp, wp), p, stride=s)
    out = out[:, :, top : hp - bottom, left : wp - right]
    return out.reshape(b, k, c, h, w)
