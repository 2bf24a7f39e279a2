"""Real two-view pairs with ground truth and their putative SIFT matches (Yi et al., CVPR 2018).

A *scene* is a folder with ``images/`` and ``pairs_with_gt.txt`` (SuperGlue's 38-field lines:
``name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)``, matrices row-major, ``T_0to1`` maps camera-0 to
camera-1 coordinates). When ``colmap_ground_truth/cameras.txt`` holds one ``SIMPLE_RADIAL`` camera
(the Lund door), its ``k1`` undistorts the keypoints before any geometry.

Putative matches as Yi et al. make them: OpenCV SIFT with at most ``num_keypoints`` keypoints per
image, every keypoint of image 0 matched to its nearest neighbour in image 1 in descriptor space
(L2, no ratio test, so that most matches are outliers). Labels: symmetric epipolar distance under the
ground-truth ``E`` in normalised coordinates below ``1e-4``. Keypoints are cached per pair as ``.npz``
under ``knnlab.paths.cache_dir() / "twoview"``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knnlab.data.epipolar import (
    essential_from_pose,
    normalize_points,
    symmetric_epipolar_distance,
    undistort_simple_radial,
)
from knnlab.errors import DataNotFoundError, InputError

__all__ = [
    "INLIER_THRESHOLD",
    "SCENES",
    "TwoViewPair",
    "load_scene",
    "pair_matches",
    "read_bgr",
    "read_gray",
    "read_pairs_file",
    "resolve_scene",
    "sift_matches",
]

log = logging.getLogger(__name__)

INLIER_THRESHOLD = 1e-4  # squared symmetric epipolar distance, normalised coordinates (Yi et al.)
SCENES = ("reichstag", "lund_door")
PAIR_FIELDS = 38


@dataclass
class TwoViewPair:
    """One image pair with its intrinsics and relative pose (camera 1 sees ``R·X₀ + t``)."""

    name0: str
    name1: str
    K0: np.ndarray  # (3, 3)
    K1: np.ndarray  # (3, 3)
    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,), unit length
    k1_0: float = 0.0  # SIMPLE_RADIAL distortion of image 0 (0: none)
    k1_1: float = 0.0
    images: Path = field(default_factory=Path)  # folder holding name0 and name1

    @property
    def E(self) -> np.ndarray:
        return essential_from_pose(self.R, self.t)


def read_pairs_file(path: str | os.PathLike) -> list[TwoViewPair]:
    """Parse a ``pairs_with_gt.txt``; a line without exactly 38 fields is one :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"pair file {str(path)!r} does not exist")
    pairs = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != PAIR_FIELDS:
            raise InputError(
                f"{path}:{lineno}: {len(fields)} fields; a pair line has {PAIR_FIELDS} "
                "(name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16))"
            )
        try:
            nums = np.array([float(v) for v in fields[2:]], dtype=np.float64)
        except ValueError as e:
            raise InputError(f"{path}:{lineno}: a number field is not a number ({e})") from e
        if not np.all(np.isfinite(nums)):
            raise InputError(f"{path}:{lineno}: NaN or infinite values")
        K0, K1 = nums[2:11].reshape(3, 3), nums[11:20].reshape(3, 3)
        T = nums[20:36].reshape(4, 4)
        for name, K in (("K0", K0), ("K1", K1)):
            if abs(np.linalg.det(K)) < 1e-12:
                raise InputError(f"{path}:{lineno}: intrinsics {name}={K.tolist()} are singular")
        t = T[:3, 3]
        if np.linalg.norm(t) < 1e-12:
            raise InputError(
                f"{path}:{lineno}: zero translation; the epipolar geometry is undefined"
            )
        pairs.append(
            TwoViewPair(fields[0], fields[1], K0, K1, T[:3, :3].copy(), t / np.linalg.norm(t))
        )
    if not pairs:
        raise InputError(f"pair file {str(path)!r} holds no pairs")
    return pairs


def _simple_radial_k1(folder: Path) -> float:
    cams = folder / "colmap_ground_truth" / "cameras.txt"
    if not cams.is_file():
        return 0.0
    rows = [ln.split() for ln in cams.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    if len(rows) == 1 and rows[0][1] == "SIMPLE_RADIAL" and len(rows[0]) == 8:
        return float(rows[0][7])
    return 0.0


def resolve_scene(scene: str | os.PathLike) -> Path:
    """``reichstag`` / ``lund_door`` (the named TwoView sets) or a folder with ``pairs_with_gt.txt``."""
    if str(scene) in SCENES:
        from knnlab.data.datasets import dataset_dir

        return dataset_dir(f"TwoView/{scene}")
    path = Path(scene)
    if not (path / "pairs_with_gt.txt").is_file():
        raise DataNotFoundError(
            f"--scene {str(scene)!r}: neither one of {SCENES} nor a folder with pairs_with_gt.txt"
        )
    return path


def load_scene(scene: str | os.PathLike) -> list[TwoViewPair]:
    """Every pair of a scene (see :func:`resolve_scene`), with the scene's distortion and image folder."""
    folder = resolve_scene(scene)
    k1 = _simple_radial_k1(folder)
    images = folder / "images" if (folder / "images").is_dir() else folder
    pairs = read_pairs_file(folder / "pairs_with_gt.txt")
    for p in pairs:
        p.k1_0 = p.k1_1 = k1
        p.images = images
    return pairs


def _imread(path: Path, flag: int) -> np.ndarray | None:
    """``cv2.imread`` without OpenCV's own log lines on a broken file (the caller raises one error)."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imread(str(path), flag)
    finally:
        cv2.utils.logging.setLogLevel(level)


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """An image file as 8-bit gray ``(H, W)`` (OpenCV); one :class:`InputError` if unreadable."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"image file {str(path)!r} does not exist")
    img = _imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise InputError(f"image file {str(path)!r} is not a readable image")
    return img


def read_bgr(path: str | os.PathLike) -> np.ndarray:
    """An image file as 8-bit BGR ``(H, W, 3)`` (OpenCV, for drawing); one error if unreadable."""
    import cv2

    read_gray(path)  # the same checks and messages
    img = _imread(Path(path), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def sift_matches(
    img0: np.ndarray, img1: np.ndarray, num_keypoints: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Putative matches ``(uv0 (N, 2), uv1 (N, 2))`` in pixels, N ≤ ``num_keypoints``.

    OpenCV SIFT, then each keypoint of image 0 with its nearest descriptor in image 1 (no ratio test).
    """
    import cv2

    from knnlab.knn import search

    sift = cv2.SIFT_create(nfeatures=num_keypoints)  # type: ignore[attr-defined]
    kp0, d0 = sift.detectAndCompute(img0, None)
    kp1, d1 = sift.detectAndCompute(img1, None)
    if d0 is None or d1 is None or len(kp0) == 0 or len(kp1) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    kp0, d0 = kp0[:num_keypoints], d0[:num_keypoints]
    kp1, d1 = kp1[:num_keypoints], d1[:num_keypoints]
    _, idx = search(np.ascontiguousarray(d0, np.float32), np.ascontiguousarray(d1, np.float32), 1)
    uv0 = np.array([k.pt for k in kp0], dtype=np.float64)
    uv1 = np.array([k.pt for k in kp1], dtype=np.float64)[np.asarray(idx)[:, 0]]
    return uv0, uv1


def _cache_path(img0: Path, img1: Path, num_keypoints: int) -> Path:
    from knnlab.paths import cache_dir

    key = []
    for p in (img0, img1):
        st = p.stat()
        key.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    digest = hashlib.sha256(("|".join(key) + f"|sift{num_keypoints}").encode()).hexdigest()[:16]
    return cache_dir() / "twoview" / f"{img0.stem}__{img1.stem}__{digest}.npz"


def cached_sift_matches(
    img0: Path, img1: Path, num_keypoints: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sift_matches` of two image files, cached as ``.npz`` (keyed by path, size, mtime)."""
    cache = _cache_path(img0, img1, num_keypoints)
    if cache.is_file():
        with np.load(cache) as z:
            return z["uv0"], z["uv1"]
    uv0, uv1 = sift_matches(read_gray(img0), read_gray(img1), num_keypoints)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, uv0=uv0, uv1=uv1)
    os.replace(tmp, cache)
    return uv0, uv1


def pair_matches(pair: TwoViewPair, num_keypoints: int = 2000) -> dict[str, np.ndarray]:
    """The pair's putative matches with ground truth.

    Returns ``x (N, 4)`` float32 normalised (undistorted) ``(x₀, y₀, x₁, y₁)``, ``uv0, uv1 (N, 2)``
    pixels, ``episym (N,)`` float64, ``label (N,)`` bool, ``R (3, 3)``, ``t (3,)``.
    """
    uv0, uv1 = cached_sift_matches(
        pair.images / pair.name0, pair.images / pair.name1, num_keypoints
    )
    n0 = normalize_points(uv0, pair.K0)
    n1 = normalize_points(uv1, pair.K1)
    if pair.k1_0:
        n0 = undistort_simple_radial(n0, pair.k1_0)
    if pair.k1_1:
        n1 = undistort_simple_radial(n1, pair.k1_1)
    episym = symmetric_epipolar_distance(n0, n1, pair.E)
    return {
        "x": np.concatenate([n0, n1], axis=1).astype(np.float32),
        "uv0": uv0,
        "uv1": uv1,
        "episym": episym,
        "label": episym < INLIER_THRESHOLD,
        "R": pair.R,
        "t": pair.t,
    }
