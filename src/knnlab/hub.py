"""One home for model weights and downloads.

- ``save_pretrained`` / ``from_pretrained`` (``config.json`` + ``model.safetensors``, as diffusers
  writes them) through :class:`PretrainedMixin`, and strict state-dict loading with one readable error.
- A registry of named published weights (:data:`WEIGHTS`: file name, URL, full SHA-256, licence) and
  :func:`resolve_weights`, which finds a file under ``$KNNLAB_WEIGHTS`` (else ``../shared/weights``),
  then in the cache, then downloads it (unless ``KNNLAB_OFFLINE=1``), and verifies the full SHA-256
  in every case, also for a file that was found locally.
- :func:`download`: streaming, resumable (HTTP ``Range``), checksummed, atomic; the data sets
  (:mod:`knnlab.data.download`) use it too.

Every model of knnlab that is saved and loaded (N³Net, DnCNN, the built-in GAN, feature networks,
BRIGHT autoencoders ...) goes through :class:`PretrainedMixin`::

    @dataclass
    class MyConfig:
        width: int = 64

    class MyNet(PretrainedMixin, nn.Module):
        config_class = MyConfig

        def __init__(self, config: MyConfig | None = None) -> None:
            super().__init__()
            self.config = config or MyConfig()
            ...

    net.save_pretrained("out/mynet")           # out/mynet/config.json + model.safetensors
    net = MyNet.from_pretrained("out/mynet")   # eval() mode
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from knnlab.errors import DataNotFoundError, InputError, KnnlabError
from knnlab.io_utils import atomic_write_bytes, atomic_write_text

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS",
    "WEIGHTS_NAME",
    "CheckpointMismatchError",
    "DownloadError",
    "PretrainedMixin",
    "WeightsEntry",
    "download",
    "load_safetensors",
    "load_state_dict_strict",
    "read_config",
    "register_weights",
    "resolve_weights",
    "sha256_file",
    "verify_file",
    "weights_entry",
]

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CheckpointMismatchError(KnnlabError):
    """A checkpoint's parameters do not fit the model (missing, unexpected or mis-shaped keys)."""


class PretrainedMixin:
    """``save_pretrained(dir)`` / ``from_pretrained(dir)`` for a module built from one dataclass config.

    The subclass sets ``config_class`` and keeps its config in ``self.config``. ``config.json`` holds
    ``model_type`` (the class name) and the config's fields; ``legacy_model_types`` lists other
    ``model_type`` / ``model`` values that older files of the same class carry.
    """

    config_class: ClassVar[type]
    legacy_model_types: ClassVar[tuple[str, ...]] = ()
    config: Any

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically each)."""
        from safetensors.torch import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()  # type: ignore[attr-defined]
        }
        config = {"model_type": type(self).__name__, **dataclasses.asdict(self.config)}
        atomic_write_bytes(directory / WEIGHTS_NAME, save(state, metadata={"format": "pt"}))
        atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, *, map_location: Any = "cpu"):
        """Rebuild a model saved with :meth:`save_pretrained`; returned in ``eval()`` mode on
        ``map_location``."""
        directory = Path(name_or_dir)
        if not directory.is_dir():
            raise DataNotFoundError(
                f"{cls.__name__}.from_pretrained({str(name_or_dir)!r}): not a folder; pass a folder "
                f"written by save_pretrained (with {CONFIG_NAME} and {WEIGHTS_NAME})"
            )
        config = read_config(
            directory, cls.__name__, cls.config_class, legacy=cls.legacy_model_types
        )
        try:
            model: Any = cls(config)  # type: ignore[call-arg]
        except ValueError as e:
            raise InputError(f"{directory / CONFIG_NAME}: not a valid {cls.__name__} ({e})") from e
        load_safetensors(model, directory / WEIGHTS_NAME, map_location=map_location)
        return model.to(map_location).eval()


def read_config(
    directory: Path, model_type: str | None, config_class: type, legacy: tuple[str, ...] = ()
) -> Any:
    """The dataclass config stored in ``directory/config.json`` (checks ``model_type`` when given;
    ``legacy`` lists other accepted values, also under the older key ``model``)."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise DataNotFoundError(
            f"{path}: missing; is {directory} a folder written by save_pretrained?"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object of config fields")
    found = raw.pop("model_type", None)
    older = raw.pop("model", None)
    found = found if found is not None else older
    if model_type is not None and found not in (None, model_type, *legacy):
        raise InputError(f"{path}: holds a {found}, not a {model_type}; load it with {found}")
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise InputError(f"{path}: unknown {config_class.__name__} fields {unknown}")
    try:
        return config_class(**raw)
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: not a valid {config_class.__name__} ({e})") from e


def load_safetensors(model: torch.nn.Module, path: Path, *, map_location: Any = "cpu") -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise DataNotFoundError(f"{path}: missing; is {path.parent} written by save_pretrained?")
    from safetensors import SafetensorError

    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:  # truncated or not a safetensors file
        raise InputError(
            f"{path}: cannot be read as safetensors ({e}); is the file complete?"
        ) from e
    load_state_dict_strict(model, state, source=str(path))


def load_state_dict_strict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """``load_state_dict(strict=True)`` with one readable error listing every mismatch.

    ``num_batches_tracked`` buffers absent from old checkpoints (PyTorch < 0.4.1) are set to 0.
    """
    own = model.state_dict()
    state = dict(state)
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {_short(unexpected)}")
        if shapes:
            parts.append(f"wrong shapes {_short(shapes)}")
        raise CheckpointMismatchError(
            f"{source} does not fit {type(model).__name__}: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)


def _short(items: list[str], n: int = 8) -> str:
    return str(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# --------------------------------------------------------------------------------------------------
# Verified files and downloads
# --------------------------------------------------------------------------------------------------


class DownloadError(KnnlabError):
    """A download failed: unreachable server, HTTP error, incomplete transfer, checksum mismatch."""


def verify_file(path: str | os.PathLike, sha256: str, what: str = "") -> Path:
    """Check ``path`` against a full SHA-256 (64 hex digits); :class:`InputError` if it differs."""
    path = Path(path)
    expected = sha256.lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise InputError(f"{what or path}: expected a full sha256 (64 hex digits), got {sha256!r}")
    digest = sha256_file(path)
    if digest != expected:
        raise InputError(
            f"{what or path}: {path} has sha256 {digest}, not the published {expected}; the file is "
            "damaged or not the published one: delete it and download it again"
        )
    return path


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool):
    from knnlab.progress import progress_enabled

    if not (enabled and progress_enabled()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=desc, leave=False)


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` (a file path) and return ``dest``.

    An existing ``dest`` whose digest matches ``sha256`` (or any existing ``dest`` when ``sha256``
    is None) is kept without downloading. Raises :class:`DownloadError` on HTTP errors, an
    unreachable server, an incomplete transfer (the partial file is kept and the next call resumes
    it) or a checksum mismatch (the download is deleted).
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if dest.is_file():
        if expected is None or sha256_file(dest) == expected:
            log.info("%s already present", dest)
            return dest
        log.warning("%s exists but its sha256 differs; downloading it again", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "knnlab"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: the part is probably complete
            response = None
        else:
            part.unlink(missing_ok=True)
            raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"cannot reach {url} ({getattr(e, 'reason', e)}); check the network"
        ) from e

    h = hashlib.sha256()
    if response is not None:
        with response:
            resumed = have and response.status == 206
            if have and not resumed:
                have = 0  # server ignored the range: start over
            if resumed:
                with open(part, "rb") as f:
                    for chunk in iter(lambda: f.read(_CHUNK), b""):
                        h.update(chunk)
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            bar = _progress_bar(total, have, dest.name, progress)
            received = have
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        f.write(chunk)
                        h.update(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            except (OSError, ValueError, http.client.HTTPException) as e:
                raise DownloadError(
                    f"download of {url} was interrupted after {received} bytes ({e}); run it "
                    "again to resume"
                ) from e
            finally:
                if bar is not None:
                    bar.close()
            if total is not None and received != total:
                raise DownloadError(
                    f"download of {url} is incomplete: {received} of {total} bytes; run it again "
                    "to resume"
                )
    else:
        with open(part, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    digest = h.hexdigest()
    if expected is not None and digest != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"sha256 mismatch for {url}: expected {expected}, got {digest}; the download was "
            "deleted (the file on the server changed or the transfer was corrupted)"
        )
    os.replace(part, dest)
    log.info("downloaded %s (sha256 %s)", dest, digest)
    return dest


_fetch = download  # resolve_weights has a parameter of that name


# --------------------------------------------------------------------------------------------------
# Named published weights
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsEntry:
    """A published weights file: where it lives on disk and on the web, its digest and licence."""

    name: str  # the name users pass, e.g. "n3net-official-sigma25"
    filename: str  # file name on disk
    subdir: str  # folder under the weights root and under the cache's weights/
    url: str  # where it is published
    sha256: str  # full SHA-256 of the file
    licence: str  # whose terms apply
    description: str = ""


#: name -> entry; :func:`register_weights` adds to it (modules register their own at import).
WEIGHTS: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry) -> WeightsEntry:
    if len(entry.sha256) != 64:
        raise ValueError(f"{entry.name}: a full sha256 is required, got {entry.sha256!r}")
    WEIGHTS[entry.name] = entry
    return entry


def weights_entry(name: str) -> WeightsEntry:
    _register_builtin()
    if name not in WEIGHTS:
        raise InputError(
            f"no published weights named {name!r}; known: {', '.join(sorted(WEIGHTS))}"
        )
    return WEIGHTS[name]


def _offline() -> bool:
    return os.environ.get("KNNLAB_OFFLINE", "0") not in ("0", "", "false", "no")


def resolve_weights(
    name: str | WeightsEntry,
    *,
    path: str | os.PathLike | None = None,
    download: bool | None = None,
    progress: bool = True,
) -> Path:
    """The verified local path of the named weights.

    Looks at ``path`` when given, else ``$KNNLAB_WEIGHTS/<subdir>/<filename>`` (else
    ``../shared/weights``), ``$KNNLAB_WEIGHTS/<filename>``, then ``cache_dir()/weights/<subdir>/``;
    downloads into the cache when none is there and ``download`` is true (``None``: unless
    ``KNNLAB_OFFLINE=1``). Every file is checked against the entry's full SHA-256, local ones too: a
    damaged local file is an :class:`InputError`, a damaged cached file is downloaded again. When
    nothing is found the :class:`DataNotFoundError` names the file, its SHA-256 and its URL.
    """
    from knnlab.paths import cache_dir, weights_root

    entry = name if isinstance(name, WeightsEntry) else weights_entry(name)
    what = f"weights {entry.name}"
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataNotFoundError(f"{what}: file {p} not found")
        return verify_file(p, entry.sha256, what)
    looked: list[str] = []
    root = weights_root(required=False)
    if root is not None:
        for candidate in (root / entry.subdir / entry.filename, root / entry.filename):
            looked.append(str(candidate))
            if candidate.is_file():
                return verify_file(candidate, entry.sha256, what)
    cached = cache_dir() / "weights" / entry.subdir / entry.filename
    looked.append(str(cached))
    if cached.is_file():
        if sha256_file(cached) == entry.sha256:
            return cached
        log.warning("%s: sha256 mismatch, downloading it again", cached)
        cached.unlink()
    if download is None:
        download = not _offline()
    if not download:
        raise DataNotFoundError(
            f"{what} not found (looked at {', '.join(looked)}): get {entry.filename} "
            f"(sha256 {entry.sha256}) from {entry.url} and put it in $KNNLAB_WEIGHTS/{entry.subdir}/"
            + (" (downloads are off: KNNLAB_OFFLINE=1)" if _offline() else "")
        )
    try:
        return _fetch(entry.url, cached, sha256=entry.sha256, progress=progress)
    except DownloadError as e:
        raise DownloadError(
            f"{e}; or get {entry.filename} (sha256 {entry.sha256}) by hand and put it in "
            f"$KNNLAB_WEIGHTS/{entry.subdir}/"
        ) from e


_BUILTIN_DONE = False


def _register_builtin() -> None:
    """Import the modules that register published weights (once)."""
    global _BUILTIN_DONE
    if _BUILTIN_DONE:
        return
    _BUILTIN_DONE = True
    import knnlab.metrics.features.inception
    import knnlab.metrics.features.vgg
    import knnlab.n3.pretrained  # noqa: F401
