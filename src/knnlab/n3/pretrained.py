"""Saving and loading models (``config.json`` + ``model.safetensors``), and the N³Net authors' published
checkpoints.

Published checkpoints
---------------------
``N3Net.from_pretrained("n3net-official-sigma25")`` (likewise ``50``, ``70``) resolves the Gaussian-
denoising checkpoints of Plötz & Roth (NeurIPS 2018), released in visinf/n3net
(``results_gaussian_denoising/pretrained_sigma*/checkpoint/051_ckpt.t7``, commit 5d5883a), looking in
order at

1. ``$KNNLAB_WEIGHTS/n3net-official/gaussian_sigma{σ}.t7`` (else ``../shared/weights/n3net-official``),
2. ``knnlab.paths.cache_dir()/n3net-official/gaussian_sigma{σ}.t7``,
3. a download from the authors' GitHub repository into that cache (set ``KNNLAB_OFFLINE=1`` to forbid it).

Every file is checked against its sha256 before it is read, and read with
``torch.load(..., weights_only=True)`` (no unpickling of code). Parameter names are mapped to ours and
loaded strictly: anything missing, unexpected or of the wrong shape is an error naming the keys.

Licence: the checkpoints are the authors' work, "free of charge for non-commercial, research, and
educational purposes" (visinf/n3net LICENSE.md, TU Darmstadt 2018); any other use needs the authors'
permission, and the files may not be redistributed. knnlab does not ship them; it fetches them from the
authors' repository on request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from knnlab.errors import InputError
from knnlab.hub import (  # re-exported: older imports of these names keep working
    CheckpointMismatchError,
    PretrainedMixin,
    WeightsEntry,
    load_state_dict_strict,
    register_weights,
    resolve_weights,
)

__all__ = [
    "OFFICIAL_SHA256",
    "OFFICIAL_URL_TEMPLATE",
    "CheckpointMismatchError",
    "PretrainedMixin",
    "convert_official_state_dict",
    "load_official_state_dict",
    "load_state_dict_strict",
    "official_sigma",
    "resolve_official_checkpoint",
]

log = logging.getLogger(__name__)

#: The authors' repository at the commit the checkpoints were taken from (a module variable so that tests
#: can point it at a local server).
OFFICIAL_URL_TEMPLATE = (
    "https://raw.githubusercontent.com/visinf/n3net/5d5883a374aab343ca4091d8a072e83629d53516/"
    "results_gaussian_denoising/pretrained_sigma{sigma}/checkpoint/051_ckpt.t7"
)
OFFICIAL_SUBDIR = "n3net-official"
OFFICIAL_SHA256: dict[int, str] = {
    25: "ca3ceea2f9f11cf685a14c0444aeeb3f0841b68deb665133b22c5e9eacf37ff4",
    50: "ffa39e15ba8a71992103cf2a223b1ef084cfca5c2e2b7724b277c88d2ec04a02",
    70: "640a2eee3d5c8675fbf89b78f91578f0a8cce5572132c740663a788ecb485d9c",
}
OFFICIAL_LICENCE = (
    "visinf/n3net LICENSE.md (TU Darmstadt 2018): non-commercial research and education use only; "
    "no redistribution"
)
_OFFICIAL_NAME = re.compile(r"^n3net-official(?:-sigma(\d+))?$")


# --------------------------------------------------------------------------------------------------
# The authors' checkpoints
# --------------------------------------------------------------------------------------------------


def official_sigma(name: str, default_sigma: int | None = None) -> int | None:
    """``"n3net-official-sigma50"`` → 50; ``"n3net-official"`` → ``default_sigma``; anything else → None."""
    m = _OFFICIAL_NAME.match(str(name))
    if m is None:
        return None
    if m.group(1) is None:
        if default_sigma is None:
            raise InputError(
                f"{name!r}: say which checkpoint, e.g. n3net-official-sigma25 "
                f"(published: sigma {sorted(OFFICIAL_SHA256)})"
            )
        return int(default_sigma)
    return int(m.group(1))


def _check_sigma(sigma: int) -> None:
    if sigma not in OFFICIAL_SHA256:
        raise InputError(
            f"no published N3Net checkpoint for sigma={sigma}; the authors released sigma "
            f"{sorted(OFFICIAL_SHA256)} (use the nearest, or train one with `knnlab train denoise`)"
        )


def official_entry(sigma: int) -> WeightsEntry:
    """The registry entry of ``gaussian_sigma{sigma}.t7`` (built from the module variables, so that
    tests can point :data:`OFFICIAL_URL_TEMPLATE` at a local server)."""
    sigma = int(sigma)
    _check_sigma(sigma)
    return WeightsEntry(
        name=f"n3net-official-sigma{sigma}",
        filename=f"gaussian_sigma{sigma}.t7",
        subdir=OFFICIAL_SUBDIR,
        url=OFFICIAL_URL_TEMPLATE.format(sigma=sigma),
        sha256=OFFICIAL_SHA256[sigma],
        licence=OFFICIAL_LICENCE,
        description=f"N3Net Gaussian denoising, sigma={sigma} (Ploetz & Roth 2018)",
    )


for _sigma in OFFICIAL_SHA256:
    register_weights(official_entry(_sigma))


def resolve_official_checkpoint(sigma: int, *, download: bool | None = None) -> Path:
    """Path of the verified ``gaussian_sigma{sigma}.t7``: shared weights, else cache, else download.

    ``download=None`` downloads unless ``KNNLAB_OFFLINE=1``. See :func:`knnlab.hub.resolve_weights`.
    """
    return resolve_weights(official_entry(sigma), download=download)


def load_official_state_dict(sigma: int) -> dict[str, torch.Tensor]:
    """The raw (authors' names) state dict of ``gaussian_sigma{sigma}.t7``, on the CPU."""
    path = resolve_official_checkpoint(sigma)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unreadable file
        raise InputError(f"{path}: cannot be read as a weights-only checkpoint ({e})") from e
    if not isinstance(ckpt, Mapping) or "net" not in ckpt:
        raise InputError(f"{path}: expected a dict with key 'net' (the authors' format)")
    return dict(ckpt["net"])


# The released DnCNN stage is ``conv1`` (+ReLU), ``layer1`` (conv, BN, ReLU)*, ``conv2``; its ``bn1`` is
# constructed but never applied in ``forward`` (visinf/n3net models/n3net.py), so its tensors are dropped.
_STAGE_RULES: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"^blocks\.(\d+)\.conv1\.(.+)$"), r"stages.\1.head.\2"),
    (re.compile(r"^blocks\.(\d+)\.bn1\..+$"), None),
    (re.compile(r"^blocks\.(\d+)\.layer1\.(.+)$"), r"stages.\1.body.\2"),
    (re.compile(r"^blocks\.(\d+)\.conv2\.(.+)$"), r"stages.\1.tail.\2"),
]


def convert_official_state_dict(
    official: Mapping[str, torch.Tensor], block_prefixes: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    """Rename the authors' N3Net parameters to ours.

    ``blocks.i.*`` (DnCNN stages) → ``stages.i.{head,body,tail}.*``; ``nls.i.<prefix><rest>`` →
    ``n3blocks.i.<block_prefixes[prefix]><rest>`` (the N³ block's own names, given by
    :class:`knnlab.n3.N3Net`). Keys no rule knows are kept as they are, so that strict loading reports
    them.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in official.items():
        new: str | None = key
        for pattern, repl in _STAGE_RULES:
            if pattern.match(key):
                new = pattern.sub(repl, key) if repl is not None else None
                break
        else:
            m = re.match(r"^nls\.(\d+)\.(.+)$", key)
            if m:
                rest = m.group(2)
                for src, dst in block_prefixes.items():
                    if rest.startswith(src):
                        new = f"n3blocks.{m.group(1)}.{dst}{rest[len(src) :]}"
                        break
        if new is not None:
            out[new] = value
    return out
