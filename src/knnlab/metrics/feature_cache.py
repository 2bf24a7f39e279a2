"""Features of an image set, computed in batches and cached as ``.npz`` with the protocol in the name.

The cache file of a set is named after what determines its features::

    <set>-<fingerprint>-<network>-<resolution>px-<resize>-n<count>.npz
    e.g. fakes-3f2a9c1b0d4e-mnist-28px-clean-n10000.npz

(``fingerprint``: a hash of the set's resolved path, file names, sizes and modification times, and of
the network's weights), and holds ``features`` (float32 ``(N, d)``) and ``protocol`` (a JSON string:
network, label, resolution, resize, count, source). Files are written atomically, so a killed run
never leaves a half-written cache. The default cache folder is ``knnlab.paths.cache_dir()/features``
(``$KNNLAB_CACHE``, else ``~/.cache/knnlab``).

``.npz`` inputs given by the user are read with :func:`load_feature_file`: the ``features`` array,
or the only array of the file.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from knnlab.errors import DataNotFoundError, InputError

__all__ = [
    "cache_name",
    "compute_features",
    "default_cache_dir",
    "features_of",
    "load_feature_file",
]

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    from knnlab.paths import cache_dir

    return cache_dir() / "features"


def _slug(text: str) -> str:
    name = Path(text.rstrip("/\\")).name or text
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:40] or "set"


def cache_name(set_name: str, fingerprint: str, network: str, resolution: int | None,
               resize: str, count: int) -> str:  # fmt: skip
    """The cache file name of a set's features under one protocol."""
    res = f"{resolution}px" if resolution is not None else "native"
    return f"{_slug(set_name)}-{fingerprint}-{_slug(network)}-{res}-{resize}-n{count}.npz"


def load_feature_file(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """``(features float32 (N, d), protocol dict)`` from a ``.npz`` file (key ``features``, or its
    only array)."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"feature file {str(p)!r} does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = list(z.keys())
            if "features" in z:
                x = z["features"]
            elif len(keys) == 1:
                x = z[keys[0]]
            else:
                raise InputError(f"{p}: holds arrays {keys}; expected one named 'features' (N, d)")
            protocol = json.loads(str(z["protocol"])) if "protocol" in z else {}
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise InputError(f"{p}: not a readable .npz feature file ({e})") from e
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{p}: features have shape {x.shape}; expected (N, d)")
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise InputError(f"{p}: features have dtype {x.dtype}; expected numbers")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise InputError(f"{p}: features hold NaN or infinite values")
    return x, protocol


def _save(path: Path, features: np.ndarray, protocol: dict[str, Any]) -> None:
    from knnlab.io_utils import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, features=features, protocol=np.array(json.dumps(protocol)))
    atomic_write_bytes(path, buf.getvalue())


@torch.no_grad()
def compute_features(
    source: Any, net: Any, extractor: Any, *, resize: str, batch_size: int,
    device: torch.device, desc: str = "features",
) -> np.ndarray:  # fmt: skip
    """Features ``float32 (N, d)`` of an :class:`~knnlab.metrics.streaming.ImageSource`, read,
    resized and embedded ``batch_size`` images at a time (with a progress bar)."""
    from knnlab.metrics.features.resize import to_input
    from knnlab.progress import progress

    fn = getattr(extractor, "features", extractor)
    n = len(source)
    out: np.ndarray | None = None
    i = 0
    batches = progress(
        source.batches(batch_size, net.channels), desc=desc, total=-(-n // batch_size), unit="batch"
    )
    for imgs in batches:
        xs = [to_input(im, net.resolution, resize, center_crop=net.center_crop) for im in imgs]
        shapes = {tuple(x.shape) for x in xs}
        if len(shapes) > 1:
            raise InputError(
                f"{source.name}: images of different sizes {sorted(shapes)[:3]} and --features "
                f"{net.name} has no input resolution; give images of one size"
            )
        f = fn(torch.stack(xs).to(device))
        f = torch.as_tensor(f).detach().float().cpu().reshape(len(xs), -1).numpy()
        if out is None:
            out = np.empty((n, f.shape[1]), dtype=np.float32)
        out[i : i + len(f)] = f
        i += len(f)
    assert out is not None and i == n
    if not np.isfinite(out).all():
        raise InputError(f"{source.name}: the feature network gave NaN or infinite features")
    return out


def features_of(
    spec: str,
    net: Any,
    *,
    extractor_factory: Any,
    weights_tag: str,
    resize: str,
    batch_size: int,
    device: torch.device,
    limit: int | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    desc: str = "features",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Features and protocol of ``spec`` (a ``.npz`` file, an image folder or a data set name),
    from the cache when present. ``extractor_factory()`` builds the network only when needed."""
    from knnlab.metrics.streaming import _fingerprint, open_source

    if spec.lower().endswith(".npz"):
        x, stored = load_feature_file(spec)
        if limit is not None:
            x = x[:limit]
        return x, {**stored, "source": spec, "count": len(x), "from": "npz"}
    source = open_source(spec, limit=limit)
    protocol: dict[str, Any] = {
        "network": net.name,
        "label": net.label,
        "resolution": net.resolution,
        "resize": resize,
        "center_crop": net.center_crop,
        "count": len(source),
        "source": spec,
    }
    fp = _fingerprint([source.fingerprint, weights_tag])
    path = None
    if use_cache:
        folder = cache_dir if cache_dir is not None else default_cache_dir()
        path = folder / cache_name(spec, fp, net.name, net.resolution, resize, len(source))
        if path.is_file():
            try:
                x, _ = load_feature_file(path)
            except InputError as e:
                log.warning("ignoring unreadable cache %s (%s)", path, e)
            else:
                if len(x) == len(source):
                    log.info("features of %s from the cache %s", spec, path)
                    return x, {**protocol, "cache": str(path), "from": "cache"}
    x = compute_features(
        source, net, extractor_factory(), resize=resize, batch_size=batch_size, device=device,
        desc=desc,
    )  # fmt: skip
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(path, x, protocol)
    return x, {**protocol, "cache": str(path) if path else None, "from": "computed"}
