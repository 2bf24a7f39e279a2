"""Two-view geometry in normalised camera coordinates (NumPy, float64).

Conventions: a match is ``(x₁, y₁, x₂, y₂)`` with both points already multiplied by ``K⁻¹``; camera 2
sees ``X₂ = R·X₁ + t``, so the essential matrix is ``E = [t]ₓ R`` and ``x₂ᵀ E x₁ = 0`` for inliers
(Hartley & Zisserman, Eq. 9.12). ``t`` is only known up to scale; it is kept at unit length.
"""

from __future__ import annotations

import numpy as np

from knnlab.errors import InputError

__all__ = [
    "essential_from_pose",
    "normalize_points",
    "pose_errors",
    "rotation_angle_deg",
    "skew",
    "symmetric_epipolar_distance",
    "undistort_simple_radial",
]


def skew(t: np.ndarray) -> np.ndarray:
    """``[t]ₓ``: the 3×3 matrix with ``[t]ₓ v = t × v``."""
    t = np.asarray(t, dtype=np.float64).reshape(3)
    return np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])


def essential_from_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``E = [t̂]ₓ R`` with ``t̂ = t / ‖t‖`` (3, 3); raises for a zero translation."""
    t = np.asarray(t, dtype=np.float64).reshape(3)
    n = np.linalg.norm(t)
    if not np.isfinite(n) or n < 1e-12:
        raise InputError(
            f"translation {t.tolist()}: must be non-zero and finite for an essential matrix"
        )
    return skew(t / n) @ np.asarray(R, dtype=np.float64).reshape(3, 3)


def symmetric_epipolar_distance(x1: np.ndarray, x2: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Squared symmetric epipolar distance of every match (Yi et al. 2018, ``get_episym``).

    ``d = (x₂ᵀEx₁)² · (1 / ((Ex₁)₁² + (Ex₁)₂²) + 1 / ((Eᵀx₂)₁² + (Eᵀx₂)₂²))`` for ``x1, x2 (N, 2)``
    → ``(N,)``. Yi et al. call a match an inlier when ``d < 1e-4`` (with ``‖t‖ = 1``).
    """
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = np.asarray(x2, dtype=np.float64)
    h1 = np.concatenate([x1, np.ones((len(x1), 1))], axis=1)  # (N, 3)
    h2 = np.concatenate([x2, np.ones((len(x2), 1))], axis=1)
    ex1 = h1 @ E.T  # (N, 3): E x₁
    etx2 = h2 @ E  # (N, 3): Eᵀ x₂
    num = np.einsum("ni,ni->n", h2, ex1) ** 2
    den1 = np.maximum(ex1[:, 0] ** 2 + ex1[:, 1] ** 2, 1e-30)
    den2 = np.maximum(etx2[:, 0] ** 2 + etx2[:, 1] ** 2, 1e-30)
    return num * (1.0 / den1 + 1.0 / den2)


def normalize_points(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``(N, 2)`` → normalised camera coordinates ``K⁻¹ [u, v, 1]ᵀ`` ``(N, 2)``.

    Raises :class:`InputError` for a singular or non-finite ``K``.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(K)) or abs(np.linalg.det(K)) < 1e-12 or abs(K[2, 2]) < 1e-12:
        raise InputError(
            f"intrinsics K={K.round(6).tolist()}: singular or not finite; "
            "give focal lengths > 0 and K[2][2] = 1"
        )
    h = np.concatenate([np.asarray(uv, dtype=np.float64), np.ones((len(uv), 1))], axis=1)
    n = h @ np.linalg.inv(K).T
    return n[:, :2] / n[:, 2:3]


def undistort_simple_radial(xd: np.ndarray, k1: float, iterations: int = 20) -> np.ndarray:
    """Invert COLMAP's SIMPLE_RADIAL distortion ``x_d = x · (1 + k₁‖x‖²)`` on normalised points (N, 2).

    Fixed-point iteration ``x ← x_d / (1 + k₁‖x‖²)``, which converges for the small ``|k₁|`` of real
    lenses (e.g. the Lund door's k₁ = −0.034) over the image.
    """
    xd = np.asarray(xd, dtype=np.float64)
    x = xd.copy()
    for _ in range(iterations):
        x = xd / (1.0 + k1 * (x**2).sum(axis=1, keepdims=True))
    return x


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle of ``R_aᵀ R_b`` in degrees (the geodesic distance of two rotations)."""
    c = (np.trace(np.asarray(R_a).T @ np.asarray(R_b)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def pose_errors(
    R_gt: np.ndarray, t_gt: np.ndarray, R: np.ndarray, t: np.ndarray
) -> tuple[float, float]:
    """``(rotation error, translation-direction error)`` in degrees, as Yi et al. measure them.

    The translation error is the angle between the directions, sign ignored
    (``arccos |t̂·t̂_gt|``), since an essential matrix fixes ``t`` only up to sign.
    """
    t = np.asarray(t, dtype=np.float64).reshape(3)
    t_gt = np.asarray(t_gt, dtype=np.float64).reshape(3)
    nt, ng = np.linalg.norm(t), np.linalg.norm(t_gt)
    if nt < 1e-15 or ng < 1e-15:
        err_t = 90.0
    else:
        err_t = float(np.degrees(np.arccos(np.clip(abs(t @ t_gt) / (nt * ng), 0.0, 1.0))))
    return rotation_angle_deg(R_gt, R), err_t
