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

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from knnlab.errors import InputError
from knnlab.hub import DownloadError, download, sha256_file
from knnlab.paths import DATA_ENV, cache_dir

__all__ = ["SOURCES", "DownloadError", "Source", "download", "fetch_dataset", "sha256_file"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


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
    #: glob patterns (relative to the set's folder) of files the reference copy adds to upstream's
    derived: tuple[str, ...] = ()
    #: how the extracted folder becomes the set's layout: "" (as is) or "celeba6000"
    layout: str = ""


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
               "6 000 aligned CelebA faces, 200 identities (CelebA terms: non-commercial research)",
               derived=("manifest.tsv",), layout="celeba6000"),
        Source("PolyU",
               "https://github.com/csjunxu/PolyU-Real-World-Noisy-Images-Dataset/archive/3af0f26.zip",
               "PolyU-3af0f26.zip", None, "zip", "CroppedImages",
               "100 real noisy 512x512 sRGB crops with ground truth (non-commercial)",
               derived=("README.txt", "LICENSE.txt")),
        Source("CC15", "https://github.com/csjunxu/MCWNNM-ICCV2017/archive/e6db69b.zip",
               "MCWNNM-e6db69b.zip", None, "zip", "Real_ccnoise_denoised_part",
               "15 real noisy 512x512 crops with ground truth, Nam et al. 2016 (non-commercial)",
               derived=("README_source.txt", "LICENSE.txt")),
        Source("TwoView/reichstag", _GTSFM, "gtsfm-b8f24c7.zip", None, "zip",
               "tests/data/imb_reichstag", "10 Reichstag photos with intrinsics and poses (BSD-3)",
               derived=("LICENSE_gtsfm.txt", "calib_KRT.txt", "pairs_with_gt.txt")),
        Source("TwoView/lund_door", _GTSFM, "gtsfm-b8f24c7.zip", None, "zip",
               "tests/data/set1_lund_door", "12 Lund door photos with intrinsics and poses (BSD-3)",
               derived=("LICENSE_gtsfm.txt", "pairs_with_gt.txt")),
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


def _celeba_layout(extracted: Path, dest: Path) -> Path:
    """``Datasets/<split>/<identity>/*.jpg`` -> ``images/*.jpg`` + ``manifest.tsv`` (file, split,
    identity folder, path in the archive), the layout of the reference copy."""
    rows = []
    (dest / "images").mkdir(parents=True)
    for jpg in sorted(extracted.rglob("*.jpg")):
        rel = jpg.relative_to(extracted)
        if len(rel.parts) != 3:
            continue
        split, identity, fname = rel.parts
        os.replace(jpg, dest / "images" / fname)
        rows.append(f"{fname}\t{split}\t{identity}\tDatasets/{rel.as_posix()}")
    (dest / "manifest.tsv").write_text(
        "file\tsplit\tclass_dir\tsrc_path\n" + "\n".join(rows) + "\n"
    )
    return dest


def _verify_download(src: Source, folder: Path) -> None:
    """Every upstream file of the set's manifest must be there with its digest."""
    from knnlab.data.manifest import manifest_path, verify_dataset

    if not manifest_path(src.name).is_file():
        log.warning("%s: no manifest; the files were not verified", src.name)
        return
    report = verify_dataset(src.name, folder, progress=False)
    if not report.ok:
        raise DownloadError(
            f"{src.url} did not unpack to the published {src.name}: {report.summary()}; nothing "
            "was kept (the upstream files changed; get the data set by hand and check it with "
            f"`knnlab data verify {src.name} --root DIR`)"
        )
    log.info("%s", report.summary())


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
        if src.layout == "celeba6000":
            built = _celeba_layout(built, tmp / src.name)
        _verify_download(src, built)
        os.replace(built, target)
    except (zipfile.BadZipFile, tarfile.TarError) as e:
        raise DownloadError(
            f"{archive} is not a valid {src.archive} archive ({e}); delete it and run again"
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s ready at %s (set $%s=%s to use it)", src.name, target, DATA_ENV, root)
    return target
