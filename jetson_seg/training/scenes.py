"""Generated training and test scenes for the default task: fast-moving solid shapes.

Classes: 0 background, 1 disc, 2 rectangle (any rotation), 3 triangle. Each scene has 1-6
solid-coloured objects 10-150 px across (at 640x480), linear motion blur up to 25 px, over
textured, noisy or gradient backgrounds with clutter and a global brightness change. The ground
truth of a blurred object is where its blurred coverage reaches one half, which is what a person
would outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = ('background', 'disc', 'rectangle', 'triangle')
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200))


@dataclass(frozen=True)
class SceneSpec:
    """Parameters of the scene distribution, expressed at the 640x480 reference size."""

    width: int = 640
    height: int = 480
    min_objects: int = 1
    max_objects: int = 6
    min_size: float = 10.0
    max_size: float = 150.0
    max_blur: int = 25

    @property
    def scale(self) -> float:
        return self.width / 640.0


@dataclass
class Scene:
    """One generated frame: RGB image, class mask and the objects' boxes (x0, y0, x1, y1, cls)."""

    image: np.ndarray
    mask: np.ndarray
    boxes: list[tuple[int, int, int, int, int]]


def _background(rng: np.random.Generator, spec: SceneSpec) -> np.ndarray:
    h, w = spec.height, spec.width
    kind = rng.integers(3)
    if kind == 0:  # smooth gradient between two random colours
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        img = a * (1 - t[..., None]) + b * t[..., None]
    elif kind == 1:  # low-frequency texture: upsampled noise
        small = rng.uniform(0, 255, (rng.integers(4, 24), rng.integers(4, 24), 3))
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:  # flat colour with strong pixel noise
        img = np.empty((h, w, 3), np.float64)
        img[:] = rng.uniform(0, 255, 3)
        img += rng.normal(0, rng.uniform(5, 30), (h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    _draw_clutter(img, rng, spec)
    return img


def _draw_clutter(img: np.ndarray, rng: np.random.Generator, spec: SceneSpec) -> None:
    """Thin lines and arcs: edges and colour that are not objects."""
    h, w = img.shape[:2]
    for _ in range(rng.integers(0, 12)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.6:
            p0 = (int(rng.integers(w)), int(rng.integers(h)))
            p1 = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.line(img, p0, p1, color, thickness, cv2.LINE_AA)
        else:
            center = (int(rng.integers(w)), int(rng.integers(h)))
            axes = (int(rng.integers(5, 80 * spec.scale + 6)),
                    int(rng.integers(5, 80 * spec.scale + 6)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), start,
                        start + float(rng.uniform(30, 200)), color, thickness, cv2.LINE_AA)


def _shape_polygon(cls: int, size: float, center: np.ndarray, angle: float,
                   aspect: float) -> np.ndarray:
    """Corners of a rectangle (`aspect` = short/long side) or an equilateral triangle."""
    if cls == 2:
        corners = np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]], np.float64)
    else:
        k = np.arange(3) * 2 * np.pi / 3
        corners = np.stack([np.cos(k), np.sin(k)], axis=1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return center + (corners * size / 2) @ rot.T


def _coverage(cls: int, size: float, center: np.ndarray, rng: np.random.Generator,
              spec: SceneSpec) -> np.ndarray:
    """Float coverage in [0, 1] of one object, drawn with sub-pixel precision."""
    cov = np.zeros((spec.height, spec.width), np.uint8)
    shift = 2
    if cls == 1:
        c = tuple(int(round(v * (1 << shift))) for v in center)
        cv2.circle(cov, c, int(round(size / 2 * (1 << shift))), 255, -1, cv2.LINE_AA, shift)
    else:
        poly = _shape_polygon(cls, size, center, float(rng.uniform(0, 2 * np.pi)),
                              float(rng.uniform(0.4, 1.0)))
        pts = np.round(poly * (1 << shift)).astype(np.int32)
        cv2.fillPoly(cov, [pts], 255, cv2.LINE_AA, shift)
    return cov.astype(np.float32) / 255.0


def _motion_blur(cov: np.ndarray, rng: np.random.Generator, spec: SceneSpec) -> np.ndarray:
    length = int(rng.integers(1, int(spec.max_blur * spec.scale) + 2))
    if length <= 2:
        return cov
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2),
                                  float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(cov, -1, kernel, borderType=cv2.BORDER_CONSTANT)


def generate_scene(rng: np.random.Generator, spec: SceneSpec = SceneSpec()) -> Scene:
    """Draw one scene from the task's distribution using `rng`."""
    img = _background(rng, spec).astype(np.float32)
    mask = np.zeros((spec.height, spec.width), np.uint8)
    for _ in range(rng.integers(spec.min_objects, spec.max_objects + 1)):
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        size = float(np.exp(rng.uniform(np.log(spec.min_size), np.log(spec.max_size))))
        size *= spec.scale
        center = rng.uniform([0, 0], [spec.width, spec.height])
        cov = _motion_blur(_coverage(cls, size, center, rng, spec), rng, spec)
        color = rng.uniform(0, 255, 3).astype(np.float32)
        img = img * (1 - cov[..., None]) + color * cov[..., None]
        mask[cov >= 0.5] = cls
    gain = rng.uniform(0.55, 1.45)
    img = img * gain + rng.uniform(-25, 25) + rng.normal(0, rng.uniform(0, 6), img.shape)
    image = np.clip(img, 0, 255).astype(np.uint8)
    return Scene(image=image, mask=mask, boxes=boxes_from_mask(mask))


def boxes_from_mask(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Boxes (x0, y0, x1, y1 exclusive, class) of the connected regions of each class."""
    boxes = []
    for cls in range(1, len(CLASS_NAMES)):
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask == cls).view(np.uint8), 8)
        for x, y, w, h, _area in stats[1:n]:
            boxes.append((int(x), int(y), int(x + w), int(y + h), cls))
    return boxes


def scene_stream(seed: int, spec: SceneSpec = SceneSpec()):
    """Endless, reproducible stream of scenes for a given seed."""
    rng = np.random.default_rng(seed)
    while True:
        yield generate_scene(rng, spec)
