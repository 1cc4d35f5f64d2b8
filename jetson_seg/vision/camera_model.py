"""A calibrated camera from camera_info: pixels -> viewing directions, lens distortion removed.

One model serves both uses of a camera_info: the tracks' viewing directions (the unit ray from
the optical centre through an object, x right, y down, z forward, and how fast it turns) and
the depth image's back-projection into metres (vision/depth.py). Intrinsics K, distortion D and
distortion_model are sensor_msgs/CameraInfo's; OpenCV undoes the distortion. K's skew (0 from
every ROS calibrator) is not used.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

#: camera_info distortion models OpenCV can undo: plumb_bob (k1 k2 t1 t2 k3) and
#: rational_polynomial (k1 k2 t1 t2 k3 k4 k5 k6) through undistortPoints, equidistant
#: (k1 k2 k3 k4, fisheye) through fisheye.undistortPoints.
DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')

#: Time step (s) of the finite difference that turns a pixel velocity into a ray's rate: short
#: enough that the distortion is linear over the step (3 px at 3000 px/s).
_STEP_S = 1e-3


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics (pixels; pixel centres at whole coordinates), distortion, size.

    `d` empty: no distortion. `width` and `height` 0: not given (directions need no size; the
    depth image's back-projection and `scaled` do).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int = 0
    height: int = 0
    d: tuple[float, ...] = ()
    distortion_model: str = 'plumb_bob'

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.fx, self.fy, self.cx, self.cy, *self.d)) \
                or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'camera_info K has no focal length (fx={self.fx}, fy={self.fy}) '
                             'or a value that is not finite: an uncalibrated camera?')
        if self.width < 0 or self.height < 0:
            raise ValueError(f'camera size {self.width}x{self.height} is negative')
        if self.d and self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f'camera_info distortion_model {self.distortion_model!r} is not '
                             f'one of {", ".join(DISTORTION_MODELS)}')

    @classmethod
    def from_camera_info(cls, info) -> 'CameraModel':
        """From a sensor_msgs/CameraInfo (duck typed: k, d, distortion_model, width, height).

        Raises ValueError naming what is wrong: an uncalibrated K (fx or fy 0, as drivers send
        before calibration), or a distortion model OpenCV cannot undo while D is not all zero.
        All-zero D is no distortion, whatever its model's name.
        """
        k = [float(v) for v in info.k]
        if len(k) != 9:
            raise ValueError(f'camera_info K has {len(k)} values, not 9')
        d, model = tuple(float(v) for v in info.d), info.distortion_model or 'plumb_bob'
        if not any(d):
            d, model = (), 'plumb_bob'
        return cls(k[0], k[4], k[2], k[5], int(info.width), int(info.height), d, model)

    @property
    def k(self) -> np.ndarray:
        """The 3x3 intrinsic matrix, as OpenCV takes it."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def distortion(self) -> np.ndarray:
        """D as OpenCV takes it (empty: none)."""
        return np.array(self.d, np.float64)

    def scaled(self, width: int, height: int) -> 'CameraModel':
        """The same camera at another resolution (pixel centres stay on the same rays).

        D is unchanged: it acts on normalized coordinates. image_proc's resize scales cx and cy
        plainly instead: a quarter pixel apart at half size.
        """
        if (width, height) == (self.width, self.height):
            return self
        if not (self.width and self.height):
            raise ValueError('camera_info gives no image size: it cannot be scaled')
        return _scaled(self, width, height)

    def normalized(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixel positions -> (N, 2) undistorted normalized coordinates (x/z, y/z)."""
        points = np.ascontiguousarray(pixels, np.float64).reshape(-1, 2)
        if not self.d:
            return (points - (self.cx, self.cy)) / (self.fx, self.fy)
        points = points.reshape(-1, 1, 2)
        if self.distortion_model == 'equidistant':
            out = cv2.fisheye.undistortPoints(points, self.k, self.distortion[:4])
        else:
            out = cv2.undistortPoints(points, self.k, self.distortion)
        return out.reshape(-1, 2)

    def normalized_at(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x/z and y/z at whole pixel positions (columns `u`, rows `v`): a depth image's rays.

        Without distortion, arithmetic; with it, looked up in the image's undone grid (made once
        per camera, about 50 ms at 640x480).
        """
        if not self.d:
            return (u - self.cx) / self.fx, (v - self.cy) / self.fy
        grid = _undistorted_grid(self)
        return grid[v, u, 0], grid[v, u, 1]

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixel positions -> (N, 3) unit rays in the optical frame."""
        flat = self.normalized(pixels)
        rays = np.empty((len(flat), 3))
        rays[:, :2] = flat
        rays[:, 2] = 1.0
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        return rays

    def rays_and_rates(self, pixels: np.ndarray,
                       velocities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit rays of (N, 2) pixel positions and their rates (1/s) for (N, 2) px/s.

        The rate is the ray's time derivative; times the object's range it is the object's
        speed across the line of sight in m/s.
        """
        pixels = np.asarray(pixels, np.float64).reshape(-1, 2)
        velocities = np.asarray(velocities, np.float64).reshape(-1, 2)
        both = self.rays(np.concatenate([pixels, pixels + velocities * _STEP_S]))
        now, later = both[:len(pixels)], both[len(pixels):]
        return now, (later - now) / _STEP_S


def read_camera_info(info) -> tuple[CameraModel | None, str]:
    """The camera of a camera_info message, or None and why it gives none."""
    try:
        return CameraModel.from_camera_info(info), ''
    except ValueError as exc:
        return None, str(exc)


@functools.lru_cache(maxsize=8)
def _scaled(camera: CameraModel, width: int, height: int) -> CameraModel:
    """Cached by value: a camera_info each frame gives equal models, and one grid each."""
    sx, sy = width / camera.width, height / camera.height
    return CameraModel(camera.fx * sx, camera.fy * sy, (camera.cx + 0.5) * sx - 0.5,
                       (camera.cy + 0.5) * sy - 0.5, width, height, camera.d,
                       camera.distortion_model)


@functools.lru_cache(maxsize=8)
def _undistorted_grid(camera: CameraModel) -> np.ndarray:
    """(height, width, 2) normalized coordinates of every pixel centre, distortion undone."""
    if not (camera.width and camera.height):
        raise ValueError('camera_info gives no image size: its depth cannot be located')
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    pixels = np.stack([u.ravel(), v.ravel()], 1).astype(np.float64)
    return camera.normalized(pixels).reshape(camera.height, camera.width, 2)
