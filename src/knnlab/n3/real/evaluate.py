"""Evaluation on real noisy photographs (PolyU, CC15) and on synthetic Poisson–Gaussian noise.

Protocol:

- Real sets: ``*_real`` is the noisy input and ``*_mean`` (the mean of many shots) the ground truth,
  both sRGB in [0, 1]. Every method is blind and works per R, G, B channel; PSNR (peak 1) and SSIM
  (:mod:`knnlab.metrics`) over the RGB image.
- Synthetic: gray images (e.g. BSD68) with ``y = clip(x + sqrt(a·x + b)·n, 0, 1)`` at a fixed
  ``(a, b)``; ``n`` drawn from ``torch.Generator().manual_seed(noise_seed(file name, seed))`` (the
  Gaussian evaluation's per-image seed). Models get the estimated noise-level function (blind), or
  the true one for the ``… (true a, b)`` rows.
- Methods (``methods``): ``noisy`` (the input itself); ``n3net-real`` or a real-noise model folder
  (:func:`~knnlab.n3.real.denoise.load_real_denoiser`); ``bm3d`` with ``σ = sqrt(a·m + b)`` per channel
  from the estimator at the channel's mean ``m``; ``n3net-official``: the published Gaussian N³Net whose
  σ (25, 50 or 70) is nearest to that estimated σ.
- ``limit``: an evenly spaced subset of the sorted image list (so that every camera of PolyU is in it);
  ``crop``: score the centre ``crop × crop`` of every image only (to fit a CPU budget).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from knnlab.data import add_poisson_gaussian_noise, dataset_dir, list_images, read_image
from knnlab.data.datasets import DATASETS
from knnlab.errors import InputError
from knnlab.metrics import psnr, ssim
from knnlab.n3.evaluate import noise_seed
from knnlab.n3.real.nlf import PHOTO_SCALE, NoiseLevelFunction
from knnlab.progress import progress

__all__ = [
    "REAL_SETS",
    "centre_crop",
    "evaluate_real",
    "evenly_spaced",
    "format_real_table",
    "load_pairs",
    "make_method",
]

log = logging.getLogger(__name__)

REAL_SETS = ("PolyU", "CC15")
#: image, optional true noise-level functions per channel -> denoised image
Method = Callable[[torch.Tensor, Sequence[NoiseLevelFunction] | None], torch.Tensor]


def evenly_spaced(n: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(n)`` (all of them when ``limit`` is None)."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit < 1:
        raise InputError(f"--limit {limit}: must be at least 1")
    return sorted({round(i * (n - 1) / max(1, limit - 1)) for i in range(limit)})


def _folder(dataset: str | Path) -> tuple[str, Path]:
    key = str(dataset)
    for d in DATASETS:
        if d.lower() == key.lower():
            folder = dataset_dir(d)
            return d, folder
    folder = Path(key)
    if not folder.is_dir():
        raise InputError(f"--dataset {key!r}: not a named data set and not a folder")
    return str(folder), folder


def centre_crop(x: torch.Tensor, crop: int | None) -> torch.Tensor:
    """The centre ``crop × crop`` of ``(C, H, W)`` (the whole image when ``crop`` is None or larger)."""
    if crop is None:
        return x
    if crop < 16:
        raise InputError(f"--crop {crop}: must be at least 16")
    h, w = x.shape[-2:]
    ch, cw = min(crop, h), min(crop, w)
    return x[
        ..., (h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw
    ].contiguous()


def load_pairs(
    dataset: str | Path, limit: int | None = None, crop: int | None = None
) -> tuple[str, list[tuple[str, torch.Tensor, torch.Tensor]]]:
    """``(label, [(name, noisy (3, H, W), clean (3, H, W)), ...])`` of a real set: files ``*_real.*``
    with a ``*_mean.*`` beside them."""
    label, folder = _folder(dataset)
    files = list_images(folder)
    reals = [f for f in files if "_real" in f.stem]
    if not reals:
        raise InputError(f"--dataset {str(dataset)!r}: no *_real images in {str(folder)!r}")
    pairs = []
    for f in reals:
        mean = f.with_name(f.name.replace("_real", "_mean"))
        if not mean.is_file():
            raise InputError(f"{f}: its ground truth {mean.name} is missing")
        pairs.append(f)
    pairs = [pairs[i] for i in evenly_spaced(len(pairs), limit)]
    out = []
    for f in pairs:
        noisy = centre_crop(read_image(f, channels=3), crop)
        clean = centre_crop(
            read_image(f.with_name(f.name.replace("_real", "_mean")), channels=3), crop
        )
        out.append((f.name.replace("_real", ""), noisy, clean))
    return label, out


def make_method(
    name: str, *, device: torch.device | str = "cpu", tile: int | None = None, nlf_scale: int
) -> tuple[str, Method]:
    """``(label, fn)`` for a method name (see the module docstring)."""
    from knnlab.n3.real.denoise import A_RANGE, B_RANGE, load_real_denoiser
    from knnlab.n3.real.nlf import estimate_nlf

    def estimate(x: torch.Tensor) -> list[NoiseLevelFunction]:
        return [
            estimate_nlf(x[c], scale=nlf_scale).clamped(A_RANGE, B_RANGE) for c in range(x.shape[0])
        ]

    def sigmas(x: torch.Tensor, nlf: Sequence[NoiseLevelFunction] | None) -> list[float]:
        fs = list(nlf) if nlf is not None else estimate(x)
        return [float(f.sigma(float(x[c].mean()))) * 255.0 for c, f in enumerate(fs)]

    key = name.lower()
    if key == "noisy":
        return "noisy input", lambda x, nlf: x
    if key == "bm3d":
        from knnlab.n3.denoise import _bm3d_fn

        def bm3d_fn(x: torch.Tensor, nlf: Sequence[NoiseLevelFunction] | None) -> torch.Tensor:
            s = sigmas(x, nlf)
            return torch.cat([_bm3d_fn(max(si, 0.1))(x[c : c + 1]) for c, si in enumerate(s)])

        return "BM3D (estimated σ)", bm3d_fn
    if key == "n3net-official":
        from knnlab.n3.denoise import load_denoiser

        cache: dict[int, Any] = {}

        def official(x: torch.Tensor, nlf: Sequence[NoiseLevelFunction] | None) -> torch.Tensor:
            outs = []
            for c, si in enumerate(sigmas(x, nlf)):
                near = min((25, 50, 70), key=lambda s: abs(s - si))
                if near not in cache:
                    cache[near] = load_denoiser(
                        f"n3net-official-sigma{near}", near, device=device, tile=tile
                    )
                outs.append(cache[near](x[c : c + 1]))
            return torch.cat(outs)

        return "N³Net published (nearest σ)", official
    den = load_real_denoiser(name, device=device, tile=tile, nlf_scale=nlf_scale)
    return den.name, lambda x, nlf: den(x, nlf)


@torch.no_grad()
def evaluate_real(
    methods: Sequence[str],
    dataset: str | Path,
    *,
    nlf: tuple[float, float] | None = None,
    limit: int | None = None,
    seed: int = 0,
    oracle: Sequence[str] = (),
    crop: int | None = None,
    device: torch.device | str = "cpu",
    tile: int | None = None,
) -> dict[str, Any]:
    """PSNR/SSIM per image and mean of every method on ``dataset``.

    ``nlf=None``: a real set (PolyU, CC15, or a folder of ``*_real``/``*_mean`` pairs). ``nlf=(a, b)``:
    synthetic Poisson–Gaussian noise on the gray images of ``dataset``; the methods named in ``oracle``
    get an extra row with the true (a, b).
    """
    if not methods:
        raise InputError("no method to evaluate; pass --model")
    synthetic = nlf is not None
    a = b = 0.0
    if synthetic:
        assert nlf is not None
        a, b = float(nlf[0]), float(nlf[1])
        if not (a >= 0 and b >= 0 and np.isfinite(a) and np.isfinite(b)):
            raise InputError(f"--nlf {a},{b}: a and b must be finite and >= 0")
        label, folder = _folder(dataset)
        files = list_images(folder)
        if not files:
            raise InputError(f"--dataset {str(dataset)!r}: no images in {str(folder)!r}")
        files = [files[i] for i in evenly_spaced(len(files), limit)]
        items = []
        for f in files:
            clean = centre_crop(read_image(f, channels=1), crop)
            gen = torch.Generator().manual_seed(noise_seed(f.name, seed))
            items.append((f.name, add_poisson_gaussian_noise(clean, a, b, generator=gen), clean))
        scale = 1  # white noise
    else:
        label, items = load_pairs(dataset, limit, crop)
        scale = PHOTO_SCALE
    runs: list[tuple[str, Method, bool]] = []
    for m in methods:
        lab, fn = make_method(m, device=device, tile=tile, nlf_scale=scale)
        runs.append((lab, fn, False))
        if synthetic and m in oracle:
            runs.append((f"{lab} (true a, b)", fn, True))
    result: dict[str, Any] = {
        "protocol": (
            f"poisson-gaussian-gray-a{a:g}-b{b:g}-seed{seed}-clipped"
            if synthetic
            else "real-noise-srgb-per-channel-blind"
        ),
        "dataset": label,
        "nlf": [a, b] if synthetic else None,
        "num_images": len(items),
        "limit": limit,
        "crop": crop,
        "images_used": [n for n, _, _ in items],
        "nlf_scale": scale,
        "results": [],
    }
    for lab, fn, use_truth in runs:
        rows, total = [], 0.0
        for name, noisy, clean in progress(items, desc=lab, total=len(items)):
            truth = [NoiseLevelFunction(a, b)] * noisy.shape[0] if use_truth else None
            t0 = time.perf_counter()
            out = fn(noisy, truth)
            dt = time.perf_counter() - t0
            total += dt
            rows.append(
                {
                    "image": name,
                    "psnr": float(psnr(out, clean)),
                    "ssim": float(ssim(out, clean)),
                    "seconds": round(dt, 2),
                }
            )
            log.info("%s %s: %.3f dB", lab, name, rows[-1]["psnr"])
        result["results"].append(
            {
                "model": lab,
                "psnr": float(np.mean([r["psnr"] for r in rows])),
                "ssim": float(np.mean([r["ssim"] for r in rows])),
                "seconds": round(total, 2),
                "images": rows,
            }
        )
    return result


def format_real_table(result: dict[str, Any], per_image: bool = False) -> str:
    """A plain-text table of an :func:`evaluate_real` result."""
    what = f"a={result['nlf'][0]:g} b={result['nlf'][1]:g}" if result["nlf"] else "real noise"
    lines = [
        f"{result['dataset']}  {what}  ({result['num_images']} images)",
        f"{'method':<36} {'PSNR':>8} {'SSIM':>7} {'s':>8}",
    ]
    for e in result["results"]:
        lines.append(f"{e['model']:<36} {e['psnr']:>8.3f} {e['ssim']:>7.4f} {e['seconds']:>8.1f}")
    if per_image:
        for e in result["results"]:
            lines.append(f"\n{e['model']}")
            for r in e["images"]:
                lines.append(f"  {r['image']:<40} {r['psnr']:>8.3f} {r['ssim']:>7.4f}")
    return "\n".join(lines)
