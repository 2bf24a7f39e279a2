"""A seeded synthetic two-view generator: unlimited training pairs for correspondence classification.

Each pair (a pure function of ``(seed, index)``):

- two pinhole cameras with their own intrinsics: image width 640–1600 px, aspect 0.6–1.4, focal
  length 0.7–1.5 × the larger side, principal point within 5 % of the centre;
- camera 1 rotated by an angle up to ``max_rotation_deg`` (30°) about a random axis and moved by a
  baseline of 0.3–2 units in a random direction, seeing ``X₁ = R·X₀ + t``;
- inliers: 3-D points at depth 4–12 in front of camera 0 that both cameras see, projected and moved
  by Gaussian keypoint noise of ``noise_px`` (1 px) in each image;
- outliers, a fraction drawn uniformly from ``outlier_ratio`` (50–95 %): half with the second point
  uniform over image 1, half *near-misses*: a point of the epipolar line of the first point, moved
  off the line by 0.01–0.05 focal lengths (15–70 px for a 1400 px focal length; the inlier
  threshold is about 0.007), the kind of wrong match repeated structure gives;
- labels from the symmetric epipolar distance under the true ``E`` (as for real pairs), so a noisy
  inlier can be labelled an outlier and a lucky outlier an inlier, as with SIFT matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from knnlab.data.epipolar import essential_from_pose, normalize_points, symmetric_epipolar_distance
from knnlab.data.twoview import INLIER_THRESHOLD
from knnlab.errors import InputError

__all__ = [
    "SyntheticTwoView",
    "SyntheticTwoViewConfig",
    "rotation_from_axis_angle",
    "synthetic_pair",
]


@dataclass
class SyntheticTwoViewConfig:
    """What the generator draws from (see the module docstring)."""

    num_matches: int = 2000  # matches per pair (N)
    outlier_ratio: tuple[float, float] = (0.5, 0.95)  # drawn uniformly per pair
    max_rotation_deg: float = 30.0  # relative rotation angle, uniform in [0, this]
    baseline: tuple[float, float] = (0.3, 2.0)  # length of t, uniform (scene depth 4-12)
    depth: tuple[float, float] = (4.0, 12.0)  # depth of the 3-D points in camera 0
    noise_px: float = 1.0  # keypoint noise, standard deviation in pixels per axis
    near_miss_fraction: float = 0.5  # of the outliers, the share that lies near the epipolar line
    near_miss_offset: tuple[float, float] = (0.01, 0.05)  # their distance from the line / focal

    def __post_init__(self) -> None:
        lo, hi = self.outlier_ratio
        if not 0.0 <= lo <= hi < 1.0:
            raise InputError(f"outlier_ratio={self.outlier_ratio}: need 0 <= low <= high < 1")
        if self.num_matches < 8:
            raise InputError(f"num_matches={self.num_matches}: need at least 8")


def rotation_from_axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' formula: the rotation by ``angle`` (radians) about the unit vector ``axis``."""
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    Kx = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * Kx + (1 - np.cos(angle)) * (Kx @ Kx)


def _camera(rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    w = rng.uniform(640, 1600)
    h = w * rng.uniform(0.6, 1.4)
    f = max(w, h) * rng.uniform(0.7, 1.5)
    cx = w / 2 + rng.uniform(-0.05, 0.05) * w
    cy = h / 2 + rng.uniform(-0.05, 0.05) * h
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]]), w, h


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    p = X @ K.T
    return p[:, :2] / p[:, 2:3]


def synthetic_pair(
    seed: int, index: int = 0, config: SyntheticTwoViewConfig | None = None
) -> dict[str, np.ndarray]:
    """One synthetic pair, a pure function of ``(seed, index, config)``.

    Returns ``x (N, 4)`` float32 normalised matches, ``uv0, uv1 (N, 2)`` pixels, ``episym (N,)``,
    ``label (N,)`` bool, ``is_outlier (N,)`` bool (how it was drawn), ``R, t, E, K0, K1``, ``size0``,
    ``size1`` ((w, h) of each image).
    """
    cfg = config or SyntheticTwoViewConfig()
    rng = np.random.default_rng([int(seed), int(index), 7_113])
    n = cfg.num_matches
    ratio = rng.uniform(*cfg.outlier_ratio)
    n_out = round(ratio * n)
    n_in = n - n_out
    for _ in range(100):
        K0, w0, h0 = _camera(rng)
        K1, w1, h1 = _camera(rng)
        R = rotation_from_axis_angle(
            rng.normal(size=3), np.radians(rng.uniform(0, cfg.max_rotation_deg))
        )
        direction = rng.normal(size=3)
        t = direction / np.linalg.norm(direction) * rng.uniform(*cfg.baseline)
        m = 4 * n_in + 64
        uv = rng.uniform([0, 0], [w0, h0], size=(m, 2))
        z = rng.uniform(*cfg.depth, size=(m, 1))
        X0 = np.concatenate([normalize_points(uv, K0), np.ones((m, 1))], axis=1) * z
        X1 = X0 @ R.T + t
        ok = X1[:, 2] > 0.1
        p1 = _project(K1, X1[ok])
        inside = (p1[:, 0] >= 0) & (p1[:, 0] < w1) & (p1[:, 1] >= 0) & (p1[:, 1] < h1)
        if inside.sum() >= n_in:
            break
    else:  # pragma: no cover - a wide field of view always overlaps after a few draws
        raise RuntimeError("synthetic_pair: could not draw overlapping cameras")
    uv0_in = uv[ok][inside][:n_in] + rng.normal(scale=cfg.noise_px, size=(n_in, 2))
    uv1_in = p1[inside][:n_in] + rng.normal(scale=cfg.noise_px, size=(n_in, 2))

    E = essential_from_pose(R, t)
    F = np.linalg.inv(K1).T @ E @ np.linalg.inv(K0)  # pixel-space fundamental matrix
    uv0_out = rng.uniform([0, 0], [w0, h0], size=(n_out, 2))
    uv1_out = rng.uniform([0, 0], [w1, h1], size=(n_out, 2))
    near = rng.uniform(size=n_out) < cfg.near_miss_fraction
    if near.any():
        h = np.concatenate([uv0_out[near], np.ones((near.sum(), 1))], axis=1)
        lines = h @ F.T  # (M, 3): a·u + b·v + c = 0 in image 1
        normal = lines[:, :2] / np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
        dist = (np.einsum("ij,ij->i", uv1_out[near], lines[:, :2]) + lines[:, 2]) / np.linalg.norm(
            lines[:, :2], axis=1
        )
        foot = uv1_out[near] - dist[:, None] * normal  # a uniform point moved onto the line
        off = rng.uniform(*cfg.near_miss_offset, size=near.sum()) * K1[0, 0]
        off = off * rng.choice([-1.0, 1.0], near.sum())
        uv1_out[near] = foot + off[:, None] * normal

    uv0 = np.concatenate([uv0_in, uv0_out])
    uv1 = np.concatenate([uv1_in, uv1_out])
    is_out = np.concatenate([np.zeros(n_in, bool), np.ones(n_out, bool)])
    order = rng.permutation(n)
    uv0, uv1, is_out = uv0[order], uv1[order], is_out[order]
    x0, x1 = normalize_points(uv0, K0), normalize_points(uv1, K1)
    episym = symmetric_epipolar_distance(x0, x1, E)
    return {
        "x": np.concatenate([x0, x1], axis=1).astype(np.float32),
        "uv0": uv0,
        "uv1": uv1,
        "episym": episym,
        "label": episym < INLIER_THRESHOLD,
        "is_outlier": is_out,
        "R": R,
        "t": t / np.linalg.norm(t),
        "E": E,
        "K0": K0,
        "K1": K1,
        "size0": np.array([w0, h0]),
        "size1": np.array([w1, h1]),
    }


class SyntheticTwoView(Dataset):
    """``length`` synthetic pairs; item ``i`` is ``{"x": (N, 4), "label": (N,), "E": (3, 3)}`` float32
    tensors, a pure function of ``(seed, i)``."""

    def __init__(
        self, length: int, seed: int = 0, config: SyntheticTwoViewConfig | None = None
    ) -> None:
        if length < 1:
            raise InputError(f"SyntheticTwoView: length={length} must be positive")
        self.length, self.seed = length, seed
        self.config = config or SyntheticTwoViewConfig()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        p = synthetic_pair(self.seed, i, self.config)
        return {
            "x": torch.from_numpy(p["x"]),
            "label": torch.from_numpy(p["label"].astype(np.float32)),
            "E": torch.from_numpy(p["E"].astype(np.float32)),
        }
