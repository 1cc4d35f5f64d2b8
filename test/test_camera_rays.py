"""Viewing directions from camera_info: checked against projections of known 3D points."""

import cv2
import numpy as np
import pytest

from jetson_seg.vision.camera_rays import CameraModel

K = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
POINTS = np.array([[0.0, 0.0, 2.0], [0.5, -0.3, 2.0], [-1.0, 0.8, 3.0], [0.2, 0.1, 0.5]])


def _project(points: np.ndarray, model: CameraModel) -> np.ndarray:
    """Pixels of 3D points through the model, distortion included (OpenCV's forward model)."""
    if model.distortion_model == 'equidistant':
        pixels = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                                           model.k, model.d)[0]
    else:
        pixels = cv2.projectPoints(points, np.zeros(3), np.zeros(3), model.k, model.d)[0]
    return pixels.reshape(-1, 2)


@pytest.mark.parametrize('distortion_model, d', [
    ('plumb_bob', [0.0] * 5),
    ('plumb_bob', [-0.25, 0.08, 0.001, -0.002, 0.0]),
    ('rational_polynomial', [0.3, -0.1, 0.001, 0.002, 0.0, 0.5, -0.1, 0.01]),
    ('equidistant', [0.05, -0.01, 0.002, 0.0]),
])
def test_rays_point_at_the_points_that_were_imaged(distortion_model, d):
    model = CameraModel.from_camera_info(K, d, distortion_model)
    rays = model.rays(_project(POINTS, model))
    truth = POINTS / np.linalg.norm(POINTS, axis=1, keepdims=True)
    np.testing.assert_allclose(rays, truth, atol=1e-5)


def test_the_rate_is_the_derivative_of_the_ray_of_a_moving_point():
    model = CameraModel.from_camera_info(K, [-0.25, 0.08, 0.001, -0.002, 0.0], 'plumb_bob')
    velocity = np.array([[0.4, -0.2, 0.0]] * len(POINTS))  # m/s, across the line of sight
    dt = 1e-4
    now, later = _project(POINTS, model), _project(POINTS + velocity * dt, model)
    rays, rates = model.rays_and_rates(now, (later - now) / dt)
    unit = POINTS / np.linalg.norm(POINTS, axis=1, keepdims=True)
    moved = POINTS + velocity * dt
    truth = (moved / np.linalg.norm(moved, axis=1, keepdims=True) - unit) / dt
    np.testing.assert_allclose(rays, unit, atol=1e-5)
    np.testing.assert_allclose(rates, truth, rtol=0.01, atol=1e-3)
    assert np.allclose(model.rays_and_rates(now, np.zeros_like(now))[1], 0.0)


def test_uncalibrated_or_unknown_cameras_are_refused_with_the_reason():
    with pytest.raises(ValueError, match='no focal length'):
        CameraModel.from_camera_info([0.0] * 9, [], 'plumb_bob')
    with pytest.raises(ValueError, match="'kannala' is not one of"):
        CameraModel.from_camera_info(K, [0.1, 0.0, 0.0, 0.0], 'kannala')
    # all-zero coefficients need no model: any name (or none) is a pinhole camera
    assert CameraModel.from_camera_info(K, [0.0] * 4, 'kannala').d.size == 0
    assert CameraModel.from_camera_info(K, [], '').distortion_model == 'plumb_bob'
