import numpy as np
import pytest

from knnlab.data.epipolar import (
    essential_from_pose,
    normalize_points,
    pose_errors,
    symmetric_epipolar_distance,
    undistort_simple_radial,
)
from knnlab.data.twoview_synthetic import rotation_from_axis_angle
from knnlab.errors import InputError


def _line_distance(p, line):
    return abs(line[0] * p[0] + line[1] * p[1] + line[2]) / np.hypot(line[0], line[1])


def test_labels_from_a_known_essential_matrix():
    rng = np.random.default_rng(0)
    R = rotation_from_axis_angle(np.array([0.2, 1.0, -0.3]), np.radians(12))
    t = np.array([1.0, 0.2, 0.1])
    E = essential_from_pose(R, t)
    X0 = np.c_[rng.uniform(-1, 1, (50, 2)), np.ones(50)] * rng.uniform(4, 8, (50, 1))
    X1 = X0 @ R.T + t
    x0, x1 = X0[:, :2] / X0[:, 2:], X1[:, :2] / X1[:, 2:]
    # exact projections are on their epipolar lines
    assert symmetric_epipolar_distance(x0, x1, E).max() < 1e-20
    # move the second points off their lines by a known distance (perpendicularly)
    lines1 = np.c_[x0, np.ones(50)] @ E.T  # E x0: lines in image 1
    normal = lines1[:, :2] / np.linalg.norm(lines1[:, :2], axis=1, keepdims=True)
    d = np.linspace(0.0, 0.02, 50)
    x1m = x1 + d[:, None] * normal
    got = symmetric_epipolar_distance(x0, x1m, E)
    # independent: squared distances to the two epipolar lines, by the point-line formula
    ref = []
    for a, b in zip(x0, x1m):
        l1 = E @ np.r_[a, 1.0]
        l0 = E.T @ np.r_[b, 1.0]
        ref.append(_line_distance(b, l1) ** 2 + _line_distance(a, l0) ** 2)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-18)
    labels = got < 1e-4
    assert labels[:5].all() and not labels[-5:].any()


def test_normalize_points_and_singular_intrinsics():
    K = np.array([[800.0, 0, 320], [0, 810, 240], [0, 0, 1]])
    uv = np.array([[320.0, 240], [1120, 1050]])
    np.testing.assert_allclose(normalize_points(uv, K), [[0, 0], [1, 1]])
    with pytest.raises(InputError, match="singular"):
        normalize_points(uv, np.diag([0.0, 800, 1]))


def test_undistort_inverts_simple_radial():
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.4, 0.4, (100, 2))
    k1 = -0.0336
    xd = x * (1 + k1 * (x**2).sum(1, keepdims=True))
    np.testing.assert_allclose(undistort_simple_radial(xd, k1), x, atol=1e-12)


def test_pose_errors():
    R = rotation_from_axis_angle(np.array([0.0, 0, 1]), np.radians(10))
    e_r, e_t = pose_errors(np.eye(3), np.array([1.0, 0, 0]), R, np.array([-1.0, 1.0, 0]))
    assert abs(e_r - 10) < 1e-9 and abs(e_t - 45) < 1e-9
