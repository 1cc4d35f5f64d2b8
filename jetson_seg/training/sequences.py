"""Generated camera sequences with ground-truth identities: the tracking task of issue 25.

A static camera at 120 Hz watches 3-6 solid shapes (the default task's classes) move 3-25 px a
frame in straight lines, bounce off the frame edges, cross and hide one another (a fixed depth
order: the later object is in front), each blurred along its own motion over the exposure. Every
frame carries, besides the image and the class mask, an id mask (which object each pixel shows)
and one TruthObject per object with its visible box: what a tracker is scored against.

The scene generator's backgrounds and drawing rules are reused (scenes.py), so the segmentation
model sees the objects it was trained on; its behaviour is unchanged. A sequence is a pure
function of its seed and spec, drawn frame by frame (no sequence is held in memory).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from jetson_seg.training.scenes import (CLASS_NAMES, SceneSpec, _background, _line_kernel,
                                        _shape_polygon)


@dataclass(frozen=True)
class SequenceSpec:
    """What a sequence looks like; sizes and speeds at the frame size given."""

    width: int = 640
    height: int = 480
    frames: int = 240
    rate: float = 120.0  # frames a second: stamps are index / rate
    min_objects: int = 3
    max_objects: int = 6
    min_size: float = 16.0  # px across
    max_size: float = 120.0
    min_speed: float = 3.0  # px a frame
    max_speed: float = 25.0
    exposure: float = 1.0  # share of the frame period the shutter is open (blur = speed x this)
    max_spin: float = 2.0  # degrees a frame a rectangle or triangle turns, at most
    noise: float = 4.0  # sensor noise (standard deviation, 0-255), new in every frame

    def __post_init__(self) -> None:
        checks = {
            'width and height must be >= 64': min(self.width, self.height) >= 64,
            'frames must be >= 1 and rate > 0': self.frames >= 1 and self.rate > 0,
            'need 1 <= min_objects <= max_objects <= 255':
                1 <= self.min_objects <= self.max_objects <= 255,
            'need 4 <= min_size <= max_size < min(width, height) / 2':
                4 <= self.min_size <= self.max_size < min(self.width, self.height) / 2,
            'need 0 <= min_speed <= max_speed': 0 <= self.min_speed <= self.max_speed,
            'exposure, max_spin and noise must be >= 0':
                min(self.exposure, self.max_spin, self.noise) >= 0,
        }
        failed = [reason for reason, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f'SequenceSpec: {"; ".join(failed)}')


@dataclass(frozen=True)
class TruthObject:
    """One object in one frame, as the evaluation needs it."""

    object_id: int  # 1.., its value in SequenceFrame.ids; the same in every frame
    class_id: int
    box: tuple[int, int, int, int]  # visible part: x0, y0, x1, y1 (exclusive); 0s if hidden
    visible: int  # pixels where it is the front object (coverage >= 0.5)
    area: int  # pixels it covers with nothing in front
    center: tuple[float, float]  # px, at mid-exposure
    velocity: tuple[float, float]  # px/s


@dataclass
class SequenceFrame:
    """One frame of a sequence: image, class mask, id mask and the objects' truth."""

    index: int
    stamp: float  # s from the first frame
    image: np.ndarray  # uint8 RGB
    mask: np.ndarray  # uint8 class ids, as Scene.mask
    ids: np.ndarray  # uint8 object id of each pixel, 0 where no object
    objects: list[TruthObject]


@dataclass
class _Mover:
    """An object's constant look and its changing position (px) and velocity (px a frame)."""

    object_id: int
    class_id: int
    size: float
    aspect: float
    angle: float  # radians
    spin: float  # radians a frame
    center: np.ndarray
    velocity: np.ndarray
    color: np.ndarray

    def polygon(self) -> np.ndarray | None:
        """Corners in the frame (None for a disc)."""
        if self.class_id == 1:
            return None
        return _shape_polygon(self.class_id, self.size, self.center, self.angle, self.aspect)

    def extent(self) -> np.ndarray:
        """Half width and half height of the shape as it is turned now."""
        poly = self.polygon()
        return np.full(2, self.size / 2) if poly is None else np.abs(poly - self.center).max(0)

    def step(self, width: int, height: int) -> None:
        """Move one frame and bounce off the edges (the shape stays whole in the frame)."""
        self.center += self.velocity
        self.angle += self.spin
        extent = self.extent()
        for axis, limit in ((0, width), (1, height)):
            low, high = extent[axis], limit - extent[axis]
            if self.center[axis] < low:
                self.center[axis] = 2 * low - self.center[axis]
                self.velocity[axis] = abs(self.velocity[axis])
            elif self.center[axis] > high:
                self.center[axis] = 2 * high - self.center[axis]
                self.velocity[axis] = -abs(self.velocity[axis])
            self.center[axis] = min(max(self.center[axis], low), high)


def _movers(rng: np.random.Generator, spec: SequenceSpec) -> list[_Mover]:
    """Draw the objects: class, size (log-uniform), colour, start inside the frame, motion."""
    movers = []
    for object_id in range(1, int(rng.integers(spec.min_objects, spec.max_objects + 1)) + 1):
        size = float(np.exp(rng.uniform(np.log(spec.min_size), np.log(spec.max_size))))
        speed, heading = rng.uniform(spec.min_speed, spec.max_speed), rng.uniform(0, 2 * np.pi)
        mover = _Mover(object_id, int(rng.integers(1, len(CLASS_NAMES))), size,
                       float(rng.uniform(0.4, 1.0)), float(rng.uniform(0, 2 * np.pi)),
                       float(np.radians(rng.uniform(-spec.max_spin, spec.max_spin))),
                       np.zeros(2), speed * np.array([np.cos(heading), np.sin(heading)]),
                       rng.uniform(0, 255, 3).astype(np.float32))
        reach = mover.size / 2 + 1
        mover.center = rng.uniform([reach, reach], [spec.width - reach, spec.height - reach])
        movers.append(mover)
    return movers


def _coverage(mover: _Mover, spec: SequenceSpec) -> tuple[np.ndarray, int, int]:
    """Blurred coverage in [0, 1] of one object in a window around it, and the window's corner.

    The shape is drawn with sub-pixel precision (as the scene generator draws), then smeared by
    a line kernel along its velocity as long as the distance it moves while the shutter is open.
    """
    blur = int(round(float(np.hypot(*mover.velocity)) * spec.exposure))
    reach = float(mover.extent().max()) + blur / 2 + 3
    x0, y0 = max(0, int(mover.center[0] - reach)), max(0, int(mover.center[1] - reach))
    x1 = min(spec.width, int(np.ceil(mover.center[0] + reach)) + 1)
    y1 = min(spec.height, int(np.ceil(mover.center[1] + reach)) + 1)
    cov = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 4
    origin = np.array([x0, y0], np.float64)
    poly = mover.polygon()
    if poly is None:
        center = tuple(int(round(v * (1 << shift))) for v in mover.center - origin)
        cv2.circle(cov, center, int(round(mover.size / 2 * (1 << shift))), 255, -1,
                   cv2.LINE_AA, shift)
    else:
        pts = np.round((poly - origin) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(cov, [pts], 255, cv2.LINE_AA, shift)
    out = cov.astype(np.float32) / 255.0
    if blur >= 2:  # the kernel's line turns counter-clockwise on screen: image y points down
        angle = -float(np.degrees(np.arctan2(mover.velocity[1], mover.velocity[0])))
        out = cv2.filter2D(out, -1, _line_kernel(blur, angle), borderType=cv2.BORDER_CONSTANT)
    return out, x0, y0


#: Sensor noise is cut from one larger field at a random offset each frame: a fresh draw of
#: 640x480x3 normals took 10 of a frame's 16 ms.
NOISE_SLACK = 32


def _noise(field: np.ndarray | None, spec: SequenceSpec, rng: np.random.Generator
           ) -> np.ndarray | None:
    """This frame's sensor noise (None without noise)."""
    if field is None:
        return None
    dy, dx = (int(v) for v in rng.integers(0, NOISE_SLACK, 2))
    return field[dy:dy + spec.height, dx:dx + spec.width]


def _render(background: np.ndarray, movers: list[_Mover], spec: SequenceSpec,
            noise: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Image, class mask, id mask and each object's unoccluded area; later objects in front."""
    img = background.copy()
    mask = np.zeros((spec.height, spec.width), np.uint8)
    ids = np.zeros_like(mask)
    areas = []
    for mover in movers:
        cov, x0, y0 = _coverage(mover, spec)
        window = (slice(y0, y0 + cov.shape[0]), slice(x0, x0 + cov.shape[1]))
        img[window] += (mover.color - img[window]) * cov[..., None]
        inside = cov >= 0.5
        mask[window][inside] = mover.class_id
        ids[window][inside] = mover.object_id
        areas.append(int(inside.sum()))
    if noise is not None:
        img += noise
    return np.clip(img, 0, 255).astype(np.uint8), mask, ids, areas


def _truth(movers: list[_Mover], ids: np.ndarray, areas: list[int],
           rate: float) -> list[TruthObject]:
    """The visible box of every object, read from the id mask."""
    objects = []
    for mover, area in zip(movers, areas):
        reach = int(mover.extent().max() + np.hypot(*mover.velocity)) + 4
        cx, cy = int(mover.center[0]), int(mover.center[1])
        top, left = max(0, cy - reach), max(0, cx - reach)
        ys, xs = np.nonzero(ids[top:cy + reach + 1, left:cx + reach + 1] == mover.object_id)
        box = ((int(xs.min()) + left, int(ys.min()) + top, int(xs.max()) + left + 1,
                int(ys.max()) + top + 1) if len(xs) else (0, 0, 0, 0))
        objects.append(TruthObject(
            mover.object_id, mover.class_id, box, len(xs), area,
            (float(mover.center[0]), float(mover.center[1])),
            (float(mover.velocity[0] * rate), float(mover.velocity[1] * rate))))
    return objects


def sequence_frames(seed: int, spec: SequenceSpec = SequenceSpec()) -> Iterator[SequenceFrame]:
    """The frames of the sequence `seed` draws, one at a time (deterministic)."""
    rng = np.random.default_rng(seed)
    background = _background(rng, SceneSpec(width=spec.width, height=spec.height))
    background = background.astype(np.float32)
    movers = _movers(rng, spec)
    field = None
    if spec.noise > 0:
        field = rng.standard_normal((spec.height + NOISE_SLACK, spec.width + NOISE_SLACK, 3),
                                    dtype=np.float32) * np.float32(spec.noise)
    for index in range(spec.frames):
        if index:
            for mover in movers:
                mover.step(spec.width, spec.height)
        image, mask, ids, areas = _render(background, movers, spec, _noise(field, spec, rng))
        yield SequenceFrame(index, index / spec.rate, image, mask, ids,
                            _truth(movers, ids, areas, spec.rate))


#: Name of the ground truth a tracking bag carries beside its storage files (in its folder).
TRUTH_FILE = 'tracking_truth.json'


def truth_json(frames: Iterable[tuple[int, list[TruthObject]]], about: dict) -> str:
    """The objects of each frame, keyed by header stamp (ns), as JSON; `about` says what made it.

    A bag's images carry no identities: scoring a tracker on a bag needs them beside it.
    """
    return json.dumps({'about': about, 'frames': [
        {'stamp_ns': stamp_ns, 'objects': [asdict(o) for o in objects]}
        for stamp_ns, objects in frames]})


def read_truth(path: Path) -> dict[int, list[TruthObject]]:
    """Header stamp (ns) -> the frame's objects, from a file `truth_json` wrote."""
    frames = json.loads(Path(path).read_text())['frames']
    return {int(frame['stamp_ns']): [TruthObject(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in o.items()})
                                     for o in frame['objects']] for frame in frames}
