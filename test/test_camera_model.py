"""The camera model from camera_info: rays checked against projections of known 3D points, and
a distorted depth image's objects located as a pinhole reading of it cannot."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from jetson_seg.vision.camera_model import CameraModel, read_camera_info
from jetson_seg.vision.depth import labelled_points, locate_objects
from jetson_seg.vision.image_conversion import DepthImage
from jetson_seg.vision.postprocess import find_regions

K = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
POINTS = np.array([[0.0, 0.0, 2.0], [0.5, -0.3, 2.0], [-1.0, 0.8, 3.0], [0.2, 0.1, 0.5]])
BARREL = [-0.3, 0.09, 0.0, 0.0, 0.0]  # plumb_bob: a wide lens's barrel distortion


def _info(d, distortion_model='plumb_bob', k=K, width=640, height=480):
    return SimpleNamespace(k=k, d=d, distortion_model=distortion_model, width=width,
                           height=height)


def _project(points: np.ndarray, model: CameraModel) -> np.ndarray:
    """Pixels of 3D points through the model, distortion included (OpenCV's forward model)."""
    if model.distortion_model == 'equidistant':
        pixels = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                                           model.k, model.distortion)[0]
    else:
        pixels = cv2.projectPoints(points, np.zeros(3), np.zeros(3), model.k,
                                   model.distortion)[0]
    return pixels.reshape(-1, 2)


@pytest.mark.parametrize('distortion_model, d', [
    ('plumb_bob', [0.0] * 5),
    ('plumb_bob', [-0.25, 0.08, 0.001, -0.002, 0.0]),
    ('rational_polynomial', [0.3, -0.1, 0.001, 0.002, 0.0, 0.5, -0.1, 0.01]),
    ('equidistant', [0.05, -0.01, 0.002, 0.0]),
])
def test_rays_point_at_the_points_that_were_imaged(distortion_model, d):
    model = CameraModel.from_camera_info(_info(d, distortion_model))
    rays = model.rays(_project(POINTS, model))
    truth = POINTS / np.linalg.norm(POINTS, axis=1, keepdims=True)
    np.testing.assert_allclose(rays, truth, atol=1e-5)


def test_the_rate_is_the_derivative_of_the_ray_of_a_moving_point():
    model = CameraModel.from_camera_info(_info([-0.25, 0.08, 0.001, -0.002, 0.0]))
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
    assert read_camera_info(_info([], k=[0.0] * 9))[1].startswith('camera_info K has no focal')
    with pytest.raises(ValueError, match="'kannala' is not one of"):
        CameraModel.from_camera_info(_info([0.1, 0.0, 0.0, 0.0], 'kannala'))
    with pytest.raises(ValueError, match='not 9'):
        CameraModel.from_camera_info(_info([], k=[500.0] * 4))
    # all-zero coefficients need no model: any name (or none) is a pinhole camera
    assert CameraModel.from_camera_info(_info([0.0] * 4, 'kannala')).d == ()
    assert CameraModel.from_camera_info(_info([], '')).distortion_model == 'plumb_bob'
    with pytest.raises(ValueError, match='no image size'):
        CameraModel.from_camera_info(_info(BARREL, width=0, height=0)).scaled(320, 240)


def test_a_scaled_camera_sees_each_pixel_centre_on_the_same_ray():
    model = CameraModel.from_camera_info(_info(BARREL))
    half = model.scaled(320, 240)
    assert half is model.scaled(320, 240)  # cached by value: one undone grid per size
    assert half.d == model.d and (half.fx, half.cx) == (250.0, 159.75)
    centres = np.array([[0.0, 0.0], [101.0, 37.0], [319.0, 239.0]])
    np.testing.assert_allclose(half.normalized(centres), model.normalized(centres * 2 + 0.5),
                               atol=1e-9)
    u, v = np.array([0, 101, 319]), np.array([0, 37, 239])
    np.testing.assert_allclose(np.stack(half.normalized_at(u, v), 1), half.normalized(centres),
                               atol=1e-9)


def _distorted_square(model: CameraModel, centre_xy: tuple[float, float], side: float,
                      z: float, wall: float) -> tuple[np.ndarray, np.ndarray]:
    """Mask and depth (m) of a square facing the camera at `z` before a wall, through `model`."""
    grid = np.stack(model.normalized_at(*np.meshgrid(np.arange(model.width),
                                                     np.arange(model.height))), -1)
    on = (np.abs(grid[..., 0] * z - centre_xy[0]) <= side / 2) & \
        (np.abs(grid[..., 1] * z - centre_xy[1]) <= side / 2)
    return on.astype(np.uint8), np.where(on, z, wall).astype(np.float32)


def test_a_distorted_depth_image_gives_the_true_size_where_a_pinhole_reading_does_not():
    """Barrel distortion shrinks an object near the corner: undoing it gives its 0.2 m back."""
    model = CameraModel.from_camera_info(_info(BARREL))
    pinhole = CameraModel(model.fx, model.fy, model.cx, model.cy, 640, 480)
    mask, metres = _distorted_square(model, (0.45, 0.3), 0.2, 1.0, 2.5)
    depth = DepthImage(metres, 1.0)
    regions = find_regions(mask, None, 2, 32)
    assert len(regions) == 1
    sizes = {name: np.array(locate_objects(mask, regions, (640, 480), depth, camera)[0].size)
             for name, camera in (('undone', model), ('pinhole', pinhole))}
    np.testing.assert_allclose(sizes['undone'][:2], 0.2, rtol=0.05)
    assert np.all(np.abs(sizes['pinhole'][:2] / 0.2 - 1) > 0.05), sizes  # 12% and 6% narrow
    cloud = labelled_points(mask, depth, model)
    assert len(cloud) == np.count_nonzero(mask)
    np.testing.assert_allclose([cloud['x'].mean(), cloud['y'].mean()], (0.45, 0.3), atol=0.01)
