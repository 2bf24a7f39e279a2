"""The N³ block for images (Plötz & Roth, NeurIPS 2018, Sec. 4 and Fig. 2), as released.

``x (B, C, H, W)`` → ``[x, z₁ − x, …, z_k − x]`` ``(B, (k+1)·C, H, W)``, where ``z_t`` are the neighbour
volumes of :func:`~knnlab.n3.n3_aggregate` matched in the embedding ``f_E(x)`` with per-pixel log
temperature ``f_T(x)``.

Parameter names, and how the authors' checkpoints (``nls.<i>.*`` of ``gaussian_sigma*.t7``) map onto
them one to one (same shapes, same order inside the ``nn.Sequential``)::

    nls.<i>.embedcnn.<j>.*                          -> embedding.<j>.*          (j = 0, 1, 3, 4, 6)
    nls.<i>.tempcnn.<j>.*                           -> temperature.<j>.*        (j = 0, 1, 3, 4, 6)
    nls.<i>.n3aggregation.aggregation.nnn.bn.*      -> aggregation.distance_norm.*

(the checkpoints carry no ``num_batches_tracked`` buffers; they are unused in eval mode).

The released temperature has a *fixed* offset: ``T = exp(mean over the patch of f_T(x) + log 0.1)``
(``--nl_temp.temp_bias 0.1``, added after the patch average and not a learned bias); it is
``log_temperature_offset`` here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from knnlab.errors import InputError
from knnlab.n3.aggregate import N3Aggregation

__all__ = ["N3Block", "conv_bn_relu_stack"]


def conv_bn_relu_stack(
    in_channels: int, features: int, out_channels: int, depth: int = 3
) -> nn.Sequential:
    """``depth − 1`` × (3×3 conv without bias, BatchNorm, ReLU), then a 3×3 conv with bias.

    Indices inside the ``Sequential`` are those of the released ``cnn_from_def`` (0 conv, 1 BN, 2 ReLU,
    3 conv, …).
    """
    if depth < 1:
        raise InputError(f"`depth`={depth} must be at least 1")
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(depth - 1):
        layers += [
            nn.Conv2d(c, features, 3, padding=1, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(),
        ]
        c = features
    layers.append(nn.Conv2d(c, out_channels, 3, padding=1, bias=True))
    return nn.Sequential(*layers)


def _dncnn_batchnorm_init(bn: nn.BatchNorm2d, kernel_size: int = 3, b_min: float = 0.025) -> None:
    """The released (DnCNN) BatchNorm init: |N(0, 2/(k²·F))| clipped below at ``b_min``, momentum 0.001."""
    with torch.no_grad():
        n = kernel_size**2 * bn.num_features
        bn.weight.normal_(0, math.sqrt(2.0 / n))
        bn.weight.copy_(bn.weight.abs().clamp(min=b_min))
        bn.bias.zero_()
    bn.momentum = 0.001


class N3Block(nn.Module):
    """N³ block: embedding CNN, temperature CNN and the N³ aggregation; output ``(k+1)·C`` channels.

    Args:
        in_channels: ``C``.
        k: number of neighbour volumes.
        patch_size, stride, window: patch grid and search window (see :func:`~knnlab.n3.n3_aggregate`).
        embed_features, embed_out, embed_depth: ``f_E`` (and ``f_T``, with 1 output channel).
        relaxation: ``"reference"`` (released, default), ``"paper"`` or ``"hard"``.
        distance_norm: the released ``BatchNorm1d(1)`` on the negated distances.
        log_temperature_offset: fixed offset of the log temperature (released: ``log 0.1``).
    """

    def __init__(
        self,
        in_channels: int,
        k: int = 7,
        patch_size: int = 10,
        stride: int = 5,
        window: int = 15,
        embed_features: int = 64,
        embed_out: int = 8,
        embed_depth: int = 3,
        relaxation: str = "reference",
        distance_norm: bool = True,
        log_temperature_offset: float = math.log(0.1),
    ) -> None:
        super().__init__()
        self.in_channels, self.k = in_channels, k
        self.out_channels = (k + 1) * in_channels
        self.embedding = conv_bn_relu_stack(in_channels, embed_features, embed_out, embed_depth)
        self.temperature = conv_bn_relu_stack(in_channels, embed_features, 1, embed_depth)
        self.aggregation = N3Aggregation(
            k,
            patch_size,
            stride,
            window,
            relaxation,
            distance_norm=distance_norm,
            log_temperature_offset=log_temperature_offset,
        )
        for mod in self.modules():
            if isinstance(mod, nn.BatchNorm2d):
                _dncnn_batchnorm_init(mod)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` → ``(B, (k+1)·C, H, W)``: ``[x, z₁ − x, …, z_k − x]``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"N3Block expects (B, {self.in_channels}, H, W); got {tuple(x.shape)}")
        z = self.aggregation(x, self.embedding(x), self.temperature(x))  # (B, k, C, H, W)
        b, c, h, w = x.shape
        z = (z - x.unsqueeze(1)).reshape(b, self.k * c, h, w)
        return torch.cat([x, z], dim=1)
