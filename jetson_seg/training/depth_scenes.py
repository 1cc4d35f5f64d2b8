"""Generated RGB-D frames with the true 3D box of every object: the depth task of issue 26.

A pinhole camera looks at a plane (a wall or floor, tilted up to `max_tilt`) behind 1-5 flat
shapes of the default task's classes, each on its own plane (tilted too) at a known depth. The
colour image is drawn like scenes.py draws it (its backgrounds and clutter, solid objects, no
motion blur), except that each pixel blends an object by the share of its area inside the
outline (see _coverage), so the default model segments it; the depth image is the same view, at
the colour resolution or a fraction of it (`depth_scale`), with what depth sensors do at the
objects' edges and elsewhere: pixels across an edge read a mix of the two depths weighted by
that share (flying pixels), noise grows with the square of the depth, and blobs and scattered
pixels have no reading (NaN here).

Truth: an object is the back-projection of its drawn outline onto its plane, so its 3D box
(extents along x, y, z of the camera's optical frame) comes from the outline's corners (a disc's
from 720 points of its circle): what locate_objects should recover from the mask's points.
Objects do not overlap and lie inside the frame, so every object is seen whole. With
`on_wall` they lie on the wall itself (a label on a table): the depth reads the same on both
sides of every outline, the worst case for anything that grows an outline by depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from jetson_seg.training.scenes import CLASS_NAMES, SceneSpec, _background, _shape_polygon
from jetson_seg.vision.camera_model import CameraModel

_SHIFT = 2  # sub-pixel bits of the drawing (as scenes.py draws)


@dataclass(frozen=True)
class DepthSceneSpec:
    """What an RGB-D frame looks like; sizes in colour pixels, depths in metres."""

    width: int = 640
    height: int = 480
    depth_scale: float = 1.0  # depth image size / colour image size (0.5: half resolution)
    focal: float = 525.0  # px at the colour size (a 63 degree wide view at 640)
    min_objects: int = 1
    max_objects: int = 5
    min_size: float = 40.0  # px across
    max_size: float = 150.0
    min_depth: float = 0.6  # m, objects' centres
    max_depth: float = 2.0
    background_depth: tuple[float, float] = (3.0, 4.0)  # m, the plane's depth on the axis
    max_tilt: float = 30.0  # degrees between a plane's normal and the optical axis (objects)
    background_tilt: float = 15.0
    noise: float = 0.001  # m, depth noise standard deviation at 1 m (grows with depth^2)
    hole_share: float = 0.03  # of the frame, in blobs with no reading
    dropout: float = 0.01  # of the pixels, scattered, with no reading
    mixed_edges: bool = True  # pixels across an object's edge read a coverage-weighted mix
    on_wall: bool = False  # objects lie on the wall (labels on a table): depth tells no outline

    def __post_init__(self) -> None:
        if not (0 < self.depth_scale <= 1 and 1 <= self.min_objects <= self.max_objects and
                0 < self.min_depth <= self.max_depth < self.background_depth[0]):
            raise ValueError(f'DepthSceneSpec out of range: {self}')


@dataclass(frozen=True)
class TruthObject3D:
    """One object's class, 2D box (colour px, exclusive) and true 3D box (m, optical frame)."""

    class_id: int
    box: tuple[int, int, int, int]
    center: tuple[float, float, float]
    size: tuple[float, float, float]


@dataclass
class DepthScene:
    """A colour frame, its class and object-id masks, its registered depth and the truth."""

    image: np.ndarray  # HxWx3 uint8 RGB
    mask: np.ndarray  # HxW uint8 class ids
    ids: np.ndarray  # HxW uint8: 1 + index into `objects`, 0 background
    depth: np.ndarray  # float32 metres at the depth size, NaN where no reading
    color_camera: CameraModel
    depth_camera: CameraModel
    objects: list[TruthObject3D]


def _plane(rng: np.random.Generator, point: np.ndarray, max_tilt: float) -> np.ndarray:
    """(normal, offset) of a plane through `point`, tilted up to `max_tilt` degrees."""
    tilt, heading = np.radians(rng.uniform(0, max_tilt)), rng.uniform(0, 2 * np.pi)
    normal = np.array([np.sin(tilt) * np.cos(heading), np.sin(tilt) * np.sin(heading),
                       np.cos(tilt)])
    return np.append(normal, normal @ point)


def _plane_depth(plane: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Depth (m) of the plane at every pixel centre of `camera`."""
    u = (np.arange(camera.width, dtype=np.float64) - camera.cx) / camera.fx
    v = (np.arange(camera.height, dtype=np.float64) - camera.cy) / camera.fy
    return (plane[3] / (plane[0] * u[None, :] + plane[1] * v[:, None] + plane[2])).astype(
        np.float32)


def _outline(cls: int, size: float, center: np.ndarray, angle: float,
             aspect: float) -> np.ndarray:
    """The drawn outline's corners in colour pixels (a disc: 720 points of its circle)."""
    if cls == 1:
        k = np.linspace(0, 2 * np.pi, 720, endpoint=False)
        return center + size / 2 * np.stack([np.cos(k), np.sin(k)], 1)
    return _shape_polygon(cls, size, center, angle, aspect)


#: Sub-pixels a side that a pixel's coverage is counted on.
_SUBPIXELS = 16


def _coverage(outline: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Share in [0, 1] of each pixel of a frame of `shape` inside the outline (its area).

    Counted on a grid 16x finer, filled without anti-aliasing, around the outline only: exact
    to about 1/16 px (OpenCV's fill takes one sub-pixel more a span: +0.04-0.16% of the size of
    a 40-150 px object).
    OpenCV's anti-aliased fill is not that: it drew shapes about 0.6 px fatter each way than
    their outline (a 30 px square's mask 1.2 px wider), so masks, depth edges and the image
    showed objects larger than their true boxes. A sensor's pixel sees the area.
    """
    height, width = shape
    x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - 1, 0)
    x1 = min(width, int(np.ceil(outline[:, 0].max())) + 2)
    y1 = min(height, int(np.ceil(outline[:, 1].max())) + 2)
    cov = np.zeros(shape, np.float32)
    if x1 <= x0 or y1 <= y0:
        return cov
    fine = np.zeros(((y1 - y0) * _SUBPIXELS, (x1 - x0) * _SUBPIXELS), np.uint8)
    # pixel i spans [i - 0.5, i + 0.5): its sub-pixel j's centre is i - 0.5 + (j + 0.5) / n
    corners = ((outline - (x0, y0)) + 0.5) * _SUBPIXELS - 0.5
    cv2.fillPoly(fine, [np.round(corners * (1 << _SHIFT)).astype(np.int32)], 255, cv2.LINE_8,
                 _SHIFT)
    cov[y0:y1, x0:x1] = cv2.resize(fine, (x1 - x0, y1 - y0),
                                   interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return cov


def _truth(outline: np.ndarray, plane: np.ndarray, camera: CameraModel
           ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Centre and size of the outline back-projected onto `plane` (extents at its corners)."""
    rays = np.stack([(outline[:, 0] - camera.cx) / camera.fx,
                     (outline[:, 1] - camera.cy) / camera.fy, np.ones(len(outline))], 1)
    points = rays * (plane[3] / (rays @ plane[:3]))[:, None]
    lo, hi = points.min(0), points.max(0)
    return tuple(float(c) for c in (lo + hi) / 2), tuple(float(s) for s in hi - lo)


#: Circles (x, y, radius) in pixels that placed objects keep clear.
_Taken = list[tuple[float, float, float]]


def _place(rng: np.random.Generator, spec: DepthSceneSpec, taken: _Taken):
    """A size and centre (px) for a new object clear of the frame's edge and of `taken`."""
    for _ in range(50):
        size = float(np.exp(rng.uniform(np.log(spec.min_size), np.log(spec.max_size))))
        reach = size / 2 * 1.25 + 3  # a rectangle's corner reaches sqrt(1 + 0.5^2) x half
        center = rng.uniform([reach, reach], [spec.width - reach, spec.height - reach])
        if all(np.hypot(*(center - (x, y))) > reach + r for x, y, r in taken):
            taken.append((*center, reach))
            return size, center
    return None


def _holes(rng: np.random.Generator, spec: DepthSceneSpec, shape: tuple[int, int]
           ) -> np.ndarray:
    """Where the depth sensor has no reading: elliptic blobs and scattered pixels."""
    height, width = shape
    holes = np.zeros(shape, np.uint8)
    target = spec.hole_share * height * width
    while holes.sum() / 255 < target:
        axes = tuple(int(a) for a in rng.uniform(2, 0.06 * width, 2))
        cv2.ellipse(holes, (int(rng.integers(width)), int(rng.integers(height))), axes,
                    float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return (holes > 0) | (rng.random(shape) < spec.dropout)


def generate_depth_scene(rng: np.random.Generator,
                         spec: DepthSceneSpec = DepthSceneSpec()) -> DepthScene:
    """Draw one RGB-D frame and its truth from `spec` using `rng`."""
    color_camera = CameraModel(spec.focal, spec.focal, (spec.width - 1) / 2,
                               (spec.height - 1) / 2, spec.width, spec.height)
    depth_camera = color_camera.scaled(round(spec.width * spec.depth_scale),
                                       round(spec.height * spec.depth_scale))
    depth_shape = (depth_camera.height, depth_camera.width)
    image = _background(rng, SceneSpec(width=spec.width, height=spec.height)).astype(np.float32)
    mask = np.zeros((spec.height, spec.width), np.uint8)
    ids = np.zeros_like(mask)
    wall = _plane(rng, np.array([0.0, 0.0, rng.uniform(*spec.background_depth)]),
                  spec.background_tilt)
    depth = _plane_depth(wall, depth_camera)
    objects, taken = [], []
    scale = depth_camera.width / spec.width
    for _ in range(rng.integers(spec.min_objects, spec.max_objects + 1)):
        placed = _place(rng, spec, taken)
        if placed is None:
            continue
        size, center = placed
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        outline = _outline(cls, size, center, float(rng.uniform(0, 2 * np.pi)),
                           float(rng.uniform(0.4, 1.0)))
        ray = np.array([(center[0] - color_camera.cx) / color_camera.fx,
                        (center[1] - color_camera.cy) / color_camera.fy, 1.0])
        plane = _plane(rng, ray * rng.uniform(spec.min_depth, spec.max_depth), spec.max_tilt)
        if spec.on_wall:
            plane = wall
        cov = _coverage(outline, mask.shape)
        image += (rng.uniform(0, 255, 3).astype(np.float32) - image) * cov[..., None]
        mask[cov >= 0.5], ids[cov >= 0.5] = cls, len(objects) + 1
        # the same outline on the depth grid: pixel centres on the same rays
        at_depth = _coverage((outline + 0.5) * scale - 0.5, depth_shape)
        near = _plane_depth(plane, depth_camera)
        weight = at_depth if spec.mixed_edges else (at_depth >= 0.5).astype(np.float32)
        depth += (near - depth) * weight
        ys, xs = np.nonzero(ids == len(objects) + 1)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        objects.append(TruthObject3D(cls, box, *_truth(outline, plane, color_camera)))
    image = image * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20) + rng.normal(0, 3, image.shape)
    depth += rng.normal(0, 1, depth_shape).astype(np.float32) * spec.noise * depth ** 2
    depth[_holes(rng, spec, depth_shape)] = np.nan
    return DepthScene(np.clip(image, 0, 255).astype(np.uint8), mask, ids, depth, color_camera,
                      depth_camera, objects)


def millimetres(metres: np.ndarray) -> np.ndarray:
    """A depth frame as 16UC1 holds it: uint16 millimetres, 0 where NaN (no reading, REP 117)."""
    return np.where(np.isnan(metres), 0, np.round(metres * 1000)).astype(np.uint16)


def depth_scene_stream(seed: int, spec: DepthSceneSpec = DepthSceneSpec()):
    """Endless, reproducible stream of RGB-D frames for a given seed."""
    rng = np.random.default_rng(seed)
    while True:
        yield generate_depth_scene(rng, spec)


@dataclass(frozen=True)
class Errors3D:
    """How far a located box is from the truth, in the terms of issue 26's goal."""

    depth: float  # |centre z error| / true z
    lateral: float  # centre's x-y distance / true z (m per m)
    size: float  # worst |size error| / true size along x and y, and / largest size along z

    def within(self, depth: float = 0.02, lateral: float = 0.01, size: float = 0.05) -> bool:
        """Issue 26's goal by default: 2% of depth, 1 cm per metre, 5% of size."""
        return self.depth <= depth and self.lateral <= lateral and self.size <= size


def box_errors(center, size, truth: TruthObject3D) -> Errors3D:
    """Errors of a box (center, size in m) against one true object."""
    c, s = np.asarray(center), np.asarray(size)
    tc, ts = np.asarray(truth.center), np.asarray(truth.size)
    rel = np.abs(s - ts) / np.append(ts[:2], ts.max())
    return Errors3D(float(abs(c[2] - tc[2]) / tc[2]), float(np.hypot(*(c[:2] - tc[:2])) / tc[2]),
                    float(rel.max()))


def match_regions(boxes, truth: list[TruthObject3D], min_iou: float = 0.5) -> dict[int, int]:
    """Index of each true object -> index of the box (x0, y0, x1, y1, class) overlapping it best.

    Same class and IoU >= `min_iou` only; an object no box matches is missing from the result.
    """
    found = {}
    for t, obj in enumerate(truth):
        tx0, ty0, tx1, ty1 = obj.box
        best, best_iou = None, min_iou
        for b, (x0, y0, x1, y1, cls) in enumerate(boxes):
            inter = max(0, min(x1, tx1) - max(x0, tx0)) * max(0, min(y1, ty1) - max(y0, ty0))
            union = (x1 - x0) * (y1 - y0) + (tx1 - tx0) * (ty1 - ty0) - inter
            if cls == obj.class_id and inter / union >= best_iou:
                best, best_iou = b, inter / union
        if best is not None:
            found[t] = best
    return found
