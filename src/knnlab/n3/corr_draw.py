"""Drawing a pair's matches: the two images side by side, predicted inliers in green, outliers in red."""

from __future__ import annotations

import numpy as np

__all__ = ["INLIER_BGR", "OUTLIER_BGR", "draw_matches"]

INLIER_BGR = (60, 200, 60)  # green
OUTLIER_BGR = (40, 40, 230)  # red


def _bgr(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img.copy()


def draw_matches(
    img0: np.ndarray,
    img1: np.ndarray,
    uv0: np.ndarray,
    uv1: np.ndarray,
    inlier: np.ndarray,
    *,
    max_outliers: int = 200,
    max_width: int = 1600,
    seed: int = 0,
) -> np.ndarray:
    """``(H, W₀ + W₁, 3)`` uint8 RGB: both images (gray or BGR ``uint8``), each match a line.

    Outliers are drawn first and thinned to a random ``max_outliers`` (so that the inliers stay
    visible); the picture is scaled down to at most ``max_width`` pixels across.
    """
    import cv2

    a, b = _bgr(img0), _bgr(img1)
    h = max(a.shape[0], b.shape[0])
    canvas = np.zeros((h, a.shape[1] + b.shape[1], 3), np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] :] = b
    canvas = (0.6 * canvas).astype(np.uint8)  # dim the photos so that the lines stand out
    scale = min(1.0, max_width / canvas.shape[1])
    if scale < 1.0:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    p0 = np.asarray(uv0) * scale
    p1 = (np.asarray(uv1) + np.array([a.shape[1], 0.0])) * scale
    inlier = np.asarray(inlier, bool)
    out_idx = np.flatnonzero(~inlier)
    if len(out_idx) > max_outliers:
        out_idx = np.random.default_rng(seed).choice(out_idx, max_outliers, replace=False)
    thick = 1  # thin lines: a few hundred matches stay readable
    for idx, colour in ((out_idx, OUTLIER_BGR), (np.flatnonzero(inlier), INLIER_BGR)):
        for i in idx:
            q0 = (round(float(p0[i, 0])), round(float(p0[i, 1])))
            q1 = (round(float(p1[i, 0])), round(float(p1[i, 1])))
            cv2.line(canvas, q0, q1, colour, thick, cv2.LINE_AA)
            cv2.circle(canvas, q0, 2, colour, -1, cv2.LINE_AA)
            cv2.circle(canvas, q1, 2, colour, -1, cv2.LINE_AA)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
