"""A slow, straightforward functional N³Net forward (eval mode) over the authors' raw state dict, written
from the description of the released model (visinf/n3net, models/n3net.py + models/non_local.py).

It is the test oracle for :class:`knnlab.n3.N3Net` loaded with the published checkpoints: every
candidate patch is gathered explicitly (chunked over queries), nothing is shared with the library.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _bn(x, sd, p, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = sd[p + "running_mean"].view(shape), sd[p + "running_var"].view(shape)
    return (x - mean) / torch.sqrt(var + eps) * sd[p + "weight"].view(shape) + sd[p + "bias"].view(
        shape
    )


def _stage(sd, i, x):
    p = f"blocks.{i}."
    y = F.relu(F.conv2d(x, sd[p + "conv1.weight"], sd[p + "conv1.bias"], padding=1))
    j = 0
    while f"{p}layer1.{j}.weight" in sd:
        y = F.conv2d(y, sd[f"{p}layer1.{j}.weight"], padding=1)
        y = F.relu(_bn(y, sd, f"{p}layer1.{j + 1}."))
        j += 3
    y = F.conv2d(y, sd[p + "conv2.weight"], sd[p + "conv2.bias"], padding=1)
    n = min(x.shape[1], y.shape[1])
    return torch.cat([y[:, :n] + x[:, :n], y[:, n:]], dim=1)


def _cnn3(sd, p, x):
    y = F.relu(_bn(F.conv2d(x, sd[p + "0.weight"], padding=1), sd, p + "1."))
    y = F.relu(_bn(F.conv2d(y, sd[p + "3.weight"], padding=1), sd, p + "4."))
    return F.conv2d(y, sd[p + "6.weight"], sd[p + "6.bias"], padding=1)


def _log1mexp(a):
    return torch.where(a < math.log(0.5), torch.log1p(-torch.exp(a)), torch.log(-torch.expm1(a)))


def _n3(sd, i, x, k, patch, stride, window, temp_bias, chunk=512):
    p = f"nls.{i}."
    xe = _cnn3(sd, p + "embedcnn.", x)
    lt = _cnn3(sd, p + "tempcnn.", x)
    B, C, H, W = x.shape
    pv, ph = -(H - patch) % stride, -(W - patch) % stride
    pad = (ph // 2, ph - ph // 2, pv // 2, pv - pv // 2)  # left, right, top, bottom
    xp, ep, tp = (F.pad(t, pad) for t in (x, xe, lt))
    Hp, Wp = xp.shape[-2:]
    n1, n2 = (Hp - patch) // stride + 1, (Wp - patch) // stride + 1
    # (B, L, D) patches, L row-major over the patch grid
    xpat = F.unfold(xp, patch, stride=stride).transpose(1, 2)
    epat = F.unfold(ep, patch, stride=stride).transpose(1, 2)
    tpat = F.unfold(tp, patch, stride=stride).mean(dim=1)  # (B, L)
    # candidates: window x window block of the grid around each query, clamped inside, self excluded
    ii = torch.arange(n1).view(n1, 1).expand(n1, n2).reshape(-1)
    jj = torch.arange(n2).view(1, n2).expand(n1, n2).reshape(-1)
    ch = (ii - window // 2).clamp(0, n1 - window)
    cw = (jj - window // 2).clamp(0, n2 - window)
    oh = torch.arange(window).view(window, 1)
    ow = torch.arange(window).view(1, window)
    cand = ((ch.view(-1, 1, 1) + oh) * n2 + (cw.view(-1, 1, 1) + ow)).reshape(n1 * n2, -1)
    own = (ii * n2 + jj).view(-1, 1)
    cand = cand[cand != own].view(n1 * n2, window * window - 1)  # (L, O)
    bnp = p + "n3aggregation.aggregation.nnn.bn."
    L = n1 * n2
    z = torch.empty(B, L, k, xpat.shape[2], dtype=x.dtype)
    for s in range(0, L, chunk):
        q = torch.arange(s, min(L, s + chunk))
        idx = cand[q]  # (q, O)
        ec = epat[:, idx]  # (B, q, O, E)
        d = -((ec - epat[:, q].unsqueeze(2)) ** 2).sum(-1)  # (B, q, O) negated distances
        d = _bn(d.reshape(B, 1, -1), sd, bnp).view(d.shape)
        logits = d / torch.exp(tpat[:, q] + math.log(temp_bias)).unsqueeze(-1)
        xc = xpat[:, idx]  # (B, q, O, F)
        for t in range(k):
            logw = F.log_softmax(logits, dim=-1)
            z[:, q, t] = torch.einsum("bqo,bqof->bqf", logw.exp(), xc)
            logits = logits + _log1mexp(logw)
    # fold back, averaging overlaps, crop the padding
    zf = z.permute(0, 2, 3, 1).reshape(B, k * xpat.shape[2], L)
    ones = F.fold(torch.ones(1, xpat.shape[2], L), (Hp, Wp), patch, stride=stride)
    img = F.fold(zf, (Hp, Wp), patch, stride=stride).view(B, k, C, Hp, Wp) / ones.view(
        1, 1, C, Hp, Wp
    )
    img = img[..., pad[2] : Hp - pad[3], pad[0] : Wp - pad[1]]
    return torch.cat([x, (img - x.unsqueeze(1)).reshape(B, k * C, H, W)], dim=1)


@torch.no_grad()
def released_forward(sd, x, k=7, patch=10, stride=5, window=15, temp_bias=0.1):
    """The released N³Net's eval-mode output for ``x`` (B, 1, H, W) in [0, 1]."""
    n_stages = 1 + max(int(key.split(".")[1]) for key in sd if key.startswith("blocks."))
    for i in range(n_stages - 1):
        x = _stage(sd, i, x)
        x = _n3(sd, i, x, k, patch, stride, window, temp_bias)
    return _stage(sd, n_stages - 1, x)
