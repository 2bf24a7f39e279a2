"""Losses of correspondence classification (Yi et al., CVPR 2018, Sec. 3.3 and Eqs. 5–7).

- :func:`classification_loss`: class-balanced logistic loss on inlier labels.
- :func:`weighted_eight_point`: the essential matrix of a weighted match set, as the eigenvector of
  the smallest eigenvalue of ``Xᵀ diag(w) X`` (the weighted eight-point algorithm, without the rank-2
  projection, exactly as the released code).
- :func:`essential_loss`: ``min(‖ê − e‖², ‖ê + e‖²)`` with ``ê`` from the weights ``relu(tanh(logit))``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "classification_loss",
    "correspondence_loss",
    "eight_point_rows",
    "essential_loss",
    "weighted_eight_point",
]


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Class-balanced logistic loss, mean over the batch.

    ``logits, labels (B, N)`` (labels bool or {0, 1}). Per pair:
    ``½ · mean_{inliers} softplus(−l) + ½ · mean_{outliers} softplus(l)`` (a class with no member
    contributes 0; the released code divides by ``max(count, 1)``).
    """
    pos = labels.to(logits.dtype)
    neg = 1.0 - pos
    lp = torch.nn.functional.softplus(-logits)  # −log σ(l)
    ln = torch.nn.functional.softplus(logits)  # −log(1 − σ(l))
    n_pos = pos.sum(-1).clamp_min(1.0)
    n_neg = neg.sum(-1).clamp_min(1.0)
    per_pair = 0.5 * (lp * pos).sum(-1) / n_pos + 0.5 * (ln * neg).sum(-1) / n_neg
    return per_pair.mean()


def eight_point_rows(x: Tensor) -> Tensor:
    """Rows of the eight-point system: ``x (B, N, 4)`` → ``X (B, N, 9)`` with ``X·vec(E) = x₂ᵀ E x₁``
    (``vec`` row-major)."""
    x1, y1, x2, y2 = x.unbind(-1)
    one = torch.ones_like(x1)
    return torch.stack([x2 * x1, x2 * y1, x2, y2 * x1, y2 * y1, y2, x1, y1, one], dim=-1)


def weighted_eight_point(x: Tensor, weights: Tensor) -> Tensor:
    """``ê (B, 9)``, unit norm: the smallest eigenvector of ``Xᵀ diag(w) X`` (Yi et al. Eq. 6).

    ``x (B, N, 4)`` matches, ``weights (B, N) ≥ 0``. Computed in float64 (the eigen-decomposition of
    a 9×9 matrix whose entries span many orders of magnitude); returned in ``x``'s dtype.
    """
    X = eight_point_rows(x.double())  # (B, N, 9)
    xwx = X.transpose(1, 2) @ (weights.double().unsqueeze(-1) * X)  # (B, 9, 9)
    _, vecs = torch.linalg.eigh(xwx)
    e = vecs[..., 0]  # eigenvalues ascending
    return (e / e.norm(dim=-1, keepdim=True)).to(x.dtype)


def essential_loss(logits: Tensor, x: Tensor, E_gt: Tensor) -> Tensor:
    """``min(‖ê − e‖², ‖ê + e‖²)``, mean over the batch (Yi et al. Eq. 7).

    ``logits (B, N)``, ``x (B, N, 4)``, ``E_gt (B, 3, 3)`` or ``(B, 9)`` (normalised here).
    """
    w = torch.relu(torch.tanh(logits))
    e_hat = weighted_eight_point(x, w)
    e = E_gt.reshape(E_gt.shape[0], 9).to(e_hat.dtype)
    e = e / e.norm(dim=-1, keepdim=True)
    d = torch.minimum((e_hat - e).pow(2).sum(-1), (e_hat + e).pow(2).sum(-1))
    return d.mean()


def correspondence_loss(
    logits: Tensor,
    x: Tensor,
    labels: Tensor,
    E_gt: Tensor,
    *,
    essential_weight: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``classification + essential_weight · essential`` (the essential term only when weight > 0)."""
    cls = classification_loss(logits, labels)
    logs: dict[str, Tensor] = {"classif": cls.detach()}
    loss = cls
    if essential_weight > 0:
        ess = essential_loss(logits, x, E_gt)
        loss = loss + essential_weight * ess
        logs["essential"] = ess.detach()
    return loss, logs
