"""Reconstruction metrics for BRIGHT and its baselines on a held-out split.

- PSNR and SSIM (``knnlab.metrics``; per image, averaged in float64);
- rFID, precision and recall (k = 3) between the features of the real and the reconstructed
  images, in a *named* feature network (the in-project MNIST classifier for MNIST; for other data
  whatever network is given, or none);
- code usage: for BRIGHT, per level (averaged over the groups) the share of table entries that get
  a non-zero interpolation weight on the split; for VQ / RQ, per codebook the perplexity
  ``exp(H(code histogram))`` and the share of dead (never used) codes;
- decoder parameters and FLOPs per image (``torch.utils.flop_counter``; for BRIGHT the retrieval,
  i.e. the hash-grid lookups and the per-group MLPs, is included; gathers count no FLOPs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from knnlab.bright.autoencoder import BrightAutoencoder
from knnlab.bright.baselines import BaselineAutoencoder
from knnlab.bright.hashgrid import level_usage
from knnlab.bright.retrieval import query_points
from knnlab.metrics import fid, precision_recall, psnr, ssim
from knnlab.progress import progress

__all__ = ["codebook_usage", "decoder_cost", "evaluate_autoencoder", "grid_usage"]


@torch.no_grad()
def grid_usage(model: Any, keys: torch.Tensor) -> list[float]:
    """Per level, the share of table entries touched by ``keys (N, C_z, h, w)``, mean over groups."""
    c = model.config
    per_group = []
    for group, k in zip(model.groups, keys.split(c.key_group, dim=1)):
        pts = query_points(k, c.feature_res, c.feature_res)
        per_group.append(level_usage(pts, group.grid.cfg))
    return [float(v) for v in np.mean(np.array(per_group), axis=0)]


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> dict[str, list[float]]:
    """``codes (N, h, w, depth)`` int64 → per codebook (head / stage) perplexity and dead share."""
    perplexity, dead = [], []
    for j in range(codes.shape[-1]):
        counts = torch.bincount(codes[..., j].reshape(-1), minlength=codebook_size).double()
        p = counts / counts.sum()
        nz = p[p > 0]
        perplexity.append(float(torch.exp(-(nz * nz.log()).sum())))
        dead.append(float((counts == 0).double().mean()))
    return {"perplexity": perplexity, "dead_share": dead}


def decoder_cost(model: Any) -> dict[str, float]:
    """Decoder parameters (retrieval included for BRIGHT) and forward FLOPs for one image."""
    c: Any = model.config
    was = model.training
    model.eval()
    with torch.no_grad():
        if isinstance(model, BrightAutoencoder):
            keys = torch.rand(1, c.key_channels, c.key_res, c.key_res)
            modules: list[nn.Module] = [model.groups, model.decoder]
            grids = sum(int(g.grid.params.numel()) for g in model.groups)  # type: ignore[union-attr,operator,misc]
            run = lambda: model.decode(keys)  # noqa: E731
        else:
            z, _, _ = model.encode(torch.rand(1, c.image_channels, c.image_size, c.image_size))
            modules, grids = [model.decoder], 0
            run = lambda: model.decode(z)  # noqa: E731
        counter = FlopCounterMode(display=False)
        with counter:
            run()
    model.train(was)
    params = sum(p.numel() for m in modules for p in m.parameters())
    return {
        "decoder_params": float(params - grids),
        "grid_params": float(grids),
        "decoder_gflops": counter.get_total_flops() / 1e9,
    }


@torch.no_grad()
def evaluate_autoencoder(
    model: Any,
    images: torch.Tensor,
    *,
    feature_net: nn.Module | None = None,
    feature_name: str | None = None,
    batch_size: int = 100,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Every reconstruction metric of ``model`` on ``images (N, C, S, S)`` in [0, 1]."""
    device = torch.device(device)
    model = model.to(device).eval()
    recons, codes = [], []
    for i in progress(range(0, len(images), batch_size), desc="reconstruct"):
        x = images[i : i + batch_size].to(device)
        if isinstance(model, BaselineAutoencoder):
            z, _, code = model.encode(x)
            y = model.decode(z)
        else:
            code = model.encode(x)
            y = model.decode(code)
        recons.append(y.cpu())
        codes.append(code.cpu())
    recon = torch.cat(recons)
    code = torch.cat(codes)
    out: dict[str, Any] = {
        "num_images": len(images),
        "psnr": float(psnr(recon, images).mean()),
        "ssim": float(ssim(recon, images).mean()),
    }
    if feature_net is not None:
        from knnlab.metrics.features import extract_features

        fr = extract_features(feature_net, images, device=device)
        ff = extract_features(feature_net, recon, device=device)
        out["rfid"] = fid(fr, ff)
        out["precision"], out["recall"] = precision_recall(fr, ff, k=3)
        out["feature_network"] = feature_name or type(feature_net).__name__
    if isinstance(model, BrightAutoencoder):
        usage = grid_usage(model, code.to(device))
        out["grid_usage_per_level"] = usage
        out["usage_summary"] = (
            f"grid entries used {100 * float(np.mean(usage)):.1f}% (mean of levels)"
        )
    elif model.config.kind in ("vq", "rq"):
        cb = codebook_usage(code, model.config.codebook_size)
        out["codebook"] = cb
        out["usage_summary"] = (
            f"perplexity {np.mean(cb['perplexity']):.1f} of {model.config.codebook_size}, "
            f"dead {100 * np.mean(cb['dead_share']):.1f}%"
        )
    else:
        out["usage_summary"] = "continuous latent"
    out.update(decoder_cost(model.cpu()))
    out["_recon"] = recon  # for figures; dropped before JSON
    return out
