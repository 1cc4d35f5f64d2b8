"""Image pixels -> viewing directions in the camera's optical frame, lens distortion removed.

What a subscriber can do with a tracked object's image position and velocity without knowing
the camera: the unit ray from the optical centre through the object (x right, y down, z
forward) and how fast that ray turns. Intrinsics and distortion come from camera_info (K, D and
distortion_model, as sensor_msgs defines them); OpenCV undoes the distortion.
"""

from __future__ import annotations

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
    """A calibrated camera: 3x3 intrinsics K, distortion coefficients D and their model."""

    k: np.ndarray
    d: np.ndarray
    distortion_model: str = 'plumb_bob'

    @classmethod
    def from_camera_info(cls, k, d, distortion_model: str) -> 'CameraModel':
        """From camera_info's K (9 values, row-major), D and distortion_model.

        Raises ValueError naming what is wrong: an uncalibrated K (fx or fy 0, as drivers send
        before calibration), or a distortion model OpenCV cannot undo while D is not all zero.
        """
        k = np.asarray(k, np.float64).reshape(3, 3)
        d = np.asarray(d, np.float64).ravel()
        if k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ValueError(f'camera_info K has no focal length (fx={k[0, 0]}, fy={k[1, 1]}): '
                             'is the camera calibrated?')
        model = distortion_model or 'plumb_bob'
        if not d.any():
            d, model = np.zeros(0), 'plumb_bob'
        elif model not in DISTORTION_MODELS:
            raise ValueError(f'camera_info distortion_model {distortion_model!r} is not one of '
                             f'{", ".join(DISTORTION_MODELS)}')
        return cls(k, d, model)

    def normalized(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixel positions -> (N, 2) undistorted normalized coordinates (x/z, y/z)."""
        points = np.ascontiguousarray(pixels, np.float64).reshape(-1, 1, 2)
        if self.distortion_model == 'equidistant':
            out = cv2.fisheye.undistortPoints(points, self.k, self.d[:4])
        else:
            out = cv2.undistortPoints(points, self.k, self.d)
        return out.reshape(-1, 2)

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
