"""Download and unpack the public data sets, with checksums.

:func:`download` streams a URL into a hidden ``.part`` file next to the destination, hashing as it
goes, and renames it into place only when the transfer is complete and the SHA-256 (when known)
matches. An interrupted transfer keeps its ``.part`` file and the next call resumes it with an HTTP
``Range`` request (starting over if the server ignores ranges); a checksum mismatch deletes it, so
nothing wrong is left behind.

:data:`SOURCES` lists where the usual data sets are published. A ``sha256`` of ``None`` means no
digest could be established for that file (GitHub's on-the-fly archives, for one, are not
guaranteed to be byte-stable); those downloads are then checked for completeness only, and
:func:`fetch_dataset` logs the digest it saw so that it can be pinned.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from knnlab.errors import InputError, KnnlabError
from knnlab.paths import DATA_ENV, cache_dir

__all__ = ["SOURCES", "DownloadError", "Source", "download", "fetch_dataset", "sha256_file"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class DownloadError(KnnlabError):
    """A download failed: unreachable server, HTTP error, incomplete transfer, checksum mismatch."""


@dataclass(frozen=True)
class Source:
    """Where a data set is published and how to unpack it.

    ``inner`` is the folder inside the archive (found by its trailing path) whose files become
    ``<root>/<name>/``; for a plain file (``archive=None``) the file itself is placed there as
    ``filename``.
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    archive: str | None  # "zip", "tar" or None
    inner: str | None
    description: str


_DNCNN = "https://github.com/cszn/DnCNN/archive/e93b278.zip"  # the commit ../shared was taken from
_SELFEXSR = "https://github.com/jbhuang0604/SelfExSR/archive/8f6dd8c.zip"
_DCSCN = "https://github.com/jiny2001/dcscn-super-resolution/archive/d382bc3.zip"
_GTSFM = "https://github.com/borglab/gtsfm/archive/b8f24c7.zip"

SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("Train400", _DNCNN, "DnCNN-e93b278.zip", None, "zip",
               "TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400",
               "400 gray 180x180 BSDS crops (cszn/DnCNN)"),
        Source("Set12", _DNCNN, "DnCNN-e93b278.zip", None, "zip", "testsets/Set12",
               "12 gray test images (cszn/DnCNN)"),
        Source("BSD68", _DNCNN, "DnCNN-e93b278.zip", None, "zip", "testsets/BSD68",
               "68 gray BSDS500 validation images (cszn/DnCNN)"),
        Source("Set5", _DNCNN, "DnCNN-e93b278.zip", None, "zip", "testsets/Set5",
               "5 RGB super-resolution test images (cszn/DnCNN)"),
        Source("Set14", _DNCNN, "DnCNN-e93b278.zip", None, "zip", "testsets/Set14",
               "14 super-resolution test images (cszn/DnCNN)"),
        Source("Urban100", "https://github.com/majedelhelou/denoising_datasets/archive/58234876.zip",
               "denoising_datasets-58234876.zip", None, "zip", "Urban100",
               "100 Urban100 images, gray (majedelhelou/denoising_datasets)"),
        Source("MNIST", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
               "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1", None, None,
               "MNIST as the Keras mnist.npz (x_train y_train x_test y_test); sha256 as pinned by Keras"),
        Source("SelfExSR", _SELFEXSR, "SelfExSR-8f6dd8c.zip", None, "zip", "data",
               "Set5/Set14/BSD100/Urban100 SR pairs as distributed with SelfExSR"),
        Source("T91", _DCSCN, "dcscn-d382bc3.zip", None, "zip", "data/yang91",
               "91 RGB SR training images of Yang et al. 2010 (jiny2001/dcscn-super-resolution)"),
        Source("B100", _DCSCN, "dcscn-d382bc3.zip", None, "zip", "data/bsd100",
               "BSD100 RGB SR test images (jiny2001/dcscn-super-resolution)"),
        Source("CelebA6000", "https://github.com/Nikhil4902/CelebA_Dataset/archive/a578f90.zip",
               "CelebA_Dataset-a578f90.zip", None, "zip", "Datasets",
               "6 000 aligned CelebA faces, 200 identities (CelebA terms: non-commercial research)"),
        Source("PolyU",
               "https://github.com/csjunxu/PolyU-Real-World-Noisy-Images-Dataset/archive/3af0f26.zip",
               "PolyU-3af0f26.zip", None, "zip", "CroppedImages",
               "100 real noisy 512x512 sRGB crops with ground truth (non-commercial)"),
        Source("CC15", "https://github.com/csjunxu/MCWNNM-ICCV2017/archive/e6db69b.zip",
               "MCWNNM-e6db69b.zip", None, "zip", "Real_ccnoise_denoised_part",
               "15 real noisy 512x512 crops with ground truth, Nam et al. 2016 (non-commercial)"),
        Source("TwoView/reichstag", _GTSFM, "gtsfm-b8f24c7.zip", None, "zip",
               "tests/data/imb_reichstag", "10 Reichstag photos with intrinsics and poses (BSD-3)"),
        Source("TwoView/lund_door", _GTSFM, "gtsfm-b8f24c7.zip", None, "zip",
               "tests/data/set1_lund_door", "12 Lund door photos with intrinsics and poses (BSD-3)"),
        Source("BSDS500",
               "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
               "BSR_bsds500.tgz", None, "tar", "BSR/BSDS500/data/images",
               "Berkeley segmentation data set, 500 colour images (train/val/test)"),
        Source("DIV2K", "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
               "DIV2K_train_HR.zip", None, "zip", "DIV2K_train_HR",
               "DIV2K, 800 2K-resolution training images (3.5 GB)"),
        Source("DIV2K_valid", "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
               "DIV2K_valid_HR.zip", None, "zip", "DIV2K_valid_HR",
               "DIV2K, 100 2K-resolution validation images"),
    ]
}  # fmt: skip


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _safe_extract(archive: Path, kind: str, into: Path) -> None:
    if kind == "zip":
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                target = (into / member).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise DownloadError(
                        f"{archive}: member {member!r} would extract outside the folder"
                    )
            z.extractall(into)
    elif kind == "tar":
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    else:
        raise InputError(f"unknown archive kind {kind!r}")


def _find_inner(top: Path, inner: str) -> Path:
    parts = Path(inner).parts
    for path in sorted(top.rglob(parts[-1])):
        if path.is_dir() and path.parts[-len(parts) :] == parts:
            return path
    raise DownloadError(f"the archive does not contain a folder {inner!r}")


def fetch_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    progress: bool = True,
    sources: dict[str, Source] | None = None,
    downloads: str | os.PathLike | None = None,
) -> Path:
    """Download (if needed) and unpack the data set ``name`` into ``root/<name>/``; return that folder.

    The archive is kept in ``downloads`` (default: :func:`knnlab.paths.cache_dir`) so several data
    sets from one archive download it once. The folder appears atomically (built in a temp folder in
    ``root`` and renamed); an existing ``root/<name>`` is left untouched.
    """
    sources = SOURCES if sources is None else sources
    match = [s for s in sources if s.lower() == name.lower()]
    if not match:
        raise InputError(f"no download source for {name!r}; choose from {', '.join(sources)}")
    src = sources[match[0]]
    root = Path(root)
    target = root / src.name
    if target.exists():
        log.info("%s already exists; not downloading", target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    cache = Path(downloads) if downloads is not None else cache_dir()
    archive = download(src.url, cache / src.filename, sha256=src.sha256, progress=progress)
    if src.sha256 is None:
        log.info("%s: sha256 %s (no pinned digest)", src.filename, sha256_file(archive))
    tmp = Path(tempfile.mkdtemp(prefix=f".{src.name}.", suffix=".partial", dir=root))
    try:
        if src.archive is None:
            built = tmp / src.name
            built.mkdir()
            shutil.copyfile(archive, built / src.filename)
        else:
            _safe_extract(archive, src.archive, tmp / "x")
            built = _find_inner(tmp / "x", src.inner or "")
        os.replace(built, target)
    except (zipfile.BadZipFile, tarfile.TarError) as e:
        raise DownloadError(
            f"{archive} is not a valid {src.archive} archive ({e}); delete it and run again"
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s ready at %s (set $%s=%s to use it)", src.name, target, DATA_ENV, root)
    return target
