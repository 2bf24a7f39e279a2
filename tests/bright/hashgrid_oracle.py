"""A straightforward tiny-cuda-nn HashGrid: one level, one corner, one dimension at a time.

Written from tcnn's ``encodings/grid.h`` definition independently of ``knnlab.bright.hashgrid``
(no shared helpers): autograd does the backward. The tests compare the fast path with it and
``benchmarks/hashgrid.py`` times against it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

TCNN_PRIMES = [1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737]


def oracle_layout(d, n_levels, log2_t, n_min, b):
    """Per level: (scale, resolution, offset, table size)."""
    levels, offset = [], 0
    for lvl in range(n_levels):
        scale = math.pow(2.0, lvl * math.log2(b)) * n_min - 1.0
        resolution = math.ceil(scale) + 1
        n_dense = resolution**d
        if n_dense > 2**31 - 1:
            n_dense = 2**31 - 1
        padded = ((n_dense + 7) // 8) * 8
        size = min(padded, 2**log2_t)
        levels.append((scale, resolution, offset, size))
        offset += size
    return levels


def oracle_hash_grid(x, params, *, n_levels, log2_t, n_min, b):
    """``x (N, d)``, ``params (rows, F)`` → ``(N, L·F)`` by the definition, with autograd."""
    n, d = x.shape
    outs = []
    for scale, resolution, offset, size in oracle_layout(d, n_levels, log2_t, n_min, b):
        pos = scale * x + 0.5
        base = torch.floor(pos)
        frac = pos - base
        base_i = base.long()
        level_out = 0
        for corner in range(2**d):
            index = torch.zeros(n, dtype=torch.long)
            weight = torch.ones(n, dtype=x.dtype)
            use_dense = resolution**d <= size
            stride = 1
            for dim in range(d):
                bit = (corner >> dim) & 1
                coord = (base_i[:, dim] + bit) % 2**32  # as uint32
                if use_dense:
                    index = (index + coord * stride) % 2**32
                    stride *= resolution
                else:
                    index = index ^ ((coord * TCNN_PRIMES[dim]) % 2**32)
                weight = weight * (frac[:, dim] if bit else 1 - frac[:, dim])
            index = index % size
            level_out = level_out + weight[:, None] * params[offset + index]
        outs.append(level_out)
    return torch.cat(outs, dim=1)


def scalar_index(point, level, *, d, n_levels, log2_t, n_min, b, corner):
    """The table row (within the level) of one corner of one point, in numpy uint32 scalars."""
    scale, resolution, _offset, size = oracle_layout(d, n_levels, log2_t, n_min, b)[level]
    coords = []
    for dim in range(d):
        p = scale * float(point[dim]) + 0.5
        coords.append(np.uint32(math.floor(p) + ((corner >> dim) & 1)))
    with np.errstate(over="ignore"):
        if resolution**d <= size:
            idx, stride = np.uint32(0), np.uint32(1)
            for c in coords:
                idx = np.uint32(idx + c * stride)
                stride = np.uint32(stride * np.uint32(resolution))
        else:
            idx = np.uint32(0)
            for dim, c in enumerate(coords):
                idx = np.uint32(idx ^ np.uint32(c * np.uint32(TCNN_PRIMES[dim])))
    return int(idx) % size
