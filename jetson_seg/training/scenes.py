"""Generated training and test scenes for the default task: fast-moving solid shapes.

Classes: 0 background, 1 disc, 2 rectangle (any rotation), 3 triangle. Each scene has 1-6
solid-coloured objects 10-150 px across (at 640x480), linear motion blur up to 25 px, over
textured, noisy or gradient backgrounds with clutter and a global brightness change. The ground
truth of a blurred object is where its blurred coverage reaches one half, which is what a person
would outline.

Shifts (`SHIFTS`) model what another camera or scene would give: grey (mono8) frames, JPEG
artefacts, sensor noise, colour casts and white balance, exposure, other textures and blur
kernels, occluders and objects cut by the frame edge, other frame sizes (letterbox padding).
A spec with `shifts` applies them to every scene (held-out sets, one per shift); `shift_rate`
draws each independently per scene (training), `shift_rates` gives some their own probability
(more grey or JPEG frames, say). With none of them, the random stream is the one of the original
generator, so the plain held-out set stays comparable between models.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = ('background', 'disc', 'rectangle', 'triangle')
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200))

#: Every shift the generator knows, in the order they are drawn for a training scene.
SHIFTS: tuple[str, ...] = ('mono', 'jpeg', 'noise', 'color', 'exposure', 'texture',
                           'occlusion', 'aspect')
#: Frame sizes of the `aspect` shift: common sensors whose aspect ratio differs from 4:3 or
#: whose size differs from 640x480.
FRAME_SIZES: tuple[tuple[int, int], ...] = ((640, 360), (752, 480), (480, 480), (320, 240),
                                            (720, 540))


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
    shifts: tuple[str, ...] = ()  # applied to every scene
    shift_rate: float = 0.0  # probability of each other shift, drawn per scene
    shift_rates: tuple[tuple[str, float], ...] = ()  # (shift, probability): overrides shift_rate
    #: probability that an object is drawn small instead (log-uniform in `small_sizes`, px at
    #: 640x480): more of the objects a 256x192 network sees as a few pixels (training only)
    small_share: float = 0.0
    small_sizes: tuple[float, float] = (14.0, 32.0)

    def __post_init__(self) -> None:
        low, high = self.small_sizes
        if not 0.0 <= self.small_share <= 1.0 or not 0 < low <= high:
            raise ValueError(f'small_share must be in [0, 1] and small_sizes (low, high) with '
                             f'0 < low <= high: {self.small_share}, {self.small_sizes}')
        unknown = (set(self.shifts) | {name for name, _ in self.shift_rates}) - set(SHIFTS)
        if unknown:
            raise ValueError(f'unknown shifts {sorted(unknown)}; known: {SHIFTS}')
        bad = [(name, rate) for name, rate in self.shift_rates if not 0.0 <= rate <= 1.0]
        if bad or not 0.0 <= self.shift_rate <= 1.0:
            raise ValueError(f'shift probabilities must be in [0, 1]: {bad or self.shift_rate}')

    def rate_of(self, shift: str) -> float:
        """Probability that a training scene gets `shift`."""
        return dict(self.shift_rates).get(shift, self.shift_rate)

    @property
    def scale(self) -> float:
        return self.width / 640.0


@dataclass
class Scene:
    """One generated frame: RGB image, class mask and its regions' boxes (boxes_from_mask)."""

    image: np.ndarray
    mask: np.ndarray
    boxes: list[tuple[int, int, int, int, int, int]]
    shifts: tuple[str, ...] = ()


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


def _colorize(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map a [0, 1] field to colours between two random ones (float, HxWx3)."""
    a, b = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    return a + (b - a) * t[..., None]


def _other_background(rng: np.random.Generator, spec: SceneSpec) -> np.ndarray:
    """Textures the plain generator never draws: gratings, tiles, fractal noise, grain, marble.

    Tiles stay small so that no background square passes for a rectangle.
    """
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(5)
    if kind == 0:  # one or two sinusoidal gratings
        t = np.zeros((h, w), np.float32)
        for _ in range(rng.integers(1, 3)):
            angle, period = rng.uniform(0, np.pi), rng.uniform(6, 120) * spec.scale
            t += np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 1:  # fine tiles or checks, 3-14 px
        cell = max(2, int(rng.integers(3, 15) * spec.scale))
        t = (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
        t = cv2.GaussianBlur(t, (0, 0), rng.uniform(0.3, 1.0))
    elif kind == 2:  # fractal value noise (clouds, foliage)
        t = np.zeros((h, w), np.float32)
        amp = 1.0
        for octave in range(int(rng.integers(3, 6))):
            cells = 3 * 2 ** octave
            small = rng.uniform(0, 1, (cells, max(2, cells * w // h))).astype(np.float32)
            t += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
            amp *= rng.uniform(0.4, 0.7)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 3:  # grain: blurred per-pixel noise, strong
        t = cv2.GaussianBlur(rng.uniform(0, 1, (h, w)).astype(np.float32), (0, 0),
                             rng.uniform(0.5, 2.5))
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    else:  # marble: a grating bent by noise
        noise = cv2.resize(rng.uniform(0, 1, (8, 8)).astype(np.float32), (w, h),
                           interpolation=cv2.INTER_CUBIC)
        period = rng.uniform(20, 90) * spec.scale
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy * rng.uniform(-1, 1)) / period
                               + rng.uniform(2, 8) * noise)
    img = np.clip(_colorize(t, rng), 0, 255).astype(np.uint8)
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


@dataclass
class _Patch:
    """A float coverage patch in [0, 1] and where its top-left corner sits in the frame."""

    cov: np.ndarray
    x0: int
    y0: int

    def region(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y0:self.y0 + self.cov.shape[0], self.x0:self.x0 + self.cov.shape[1]]


def _window(center: np.ndarray, radius: float, margin: int, spec: SceneSpec
            ) -> tuple[int, int, int, int] | None:
    """Frame window (x0, y0, x1, y1) around a shape plus `margin`, clipped; None if outside."""
    x0 = max(0, int(np.floor(center[0] - radius)) - margin)
    y0 = max(0, int(np.floor(center[1] - radius)) - margin)
    x1 = min(spec.width, int(np.ceil(center[0] + radius)) + margin + 1)
    y1 = min(spec.height, int(np.ceil(center[1] + radius)) + margin + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _coverage(cls: int, size: float, center: np.ndarray, rng: np.random.Generator,
              spec: SceneSpec, margin: int) -> _Patch | None:
    """Coverage of one object, drawn with sub-pixel precision in a window around it.

    The window is `margin` px larger than the shape (room for blur): the cost follows the
    object, not the frame.
    """
    shift = 2
    if cls == 1:
        radius = size / 2
        poly = None
    else:
        poly = _shape_polygon(cls, size, center, float(rng.uniform(0, 2 * np.pi)),
                              float(rng.uniform(0.4, 1.0)))
        radius = float(np.abs(poly - center).max())
    win = _window(center, radius + 2, margin, spec)
    if win is None:
        return None
    x0, y0, x1, y1 = win
    cov = np.zeros((y1 - y0, x1 - x0), np.uint8)
    origin = np.array([x0, y0], np.float64)
    if poly is None:
        c = tuple(int(round(v * (1 << shift))) for v in center - origin)
        cv2.circle(cov, c, int(round(size / 2 * (1 << shift))), 255, -1, cv2.LINE_AA, shift)
    else:
        pts = np.round((poly - origin) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(cov, [pts], 255, cv2.LINE_AA, shift)
    return _Patch(cov.astype(np.float32) / 255.0, x0, y0)


def _line_kernel(length: int, angle: float, weights: np.ndarray | None = None) -> np.ndarray:
    """A normalised straight-line blur kernel; `weights` along it make the motion uneven."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 if weights is None else weights
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return kernel / max(float(kernel.sum()), 1e-6)


def _motion_kernel(rng: np.random.Generator, spec: SceneSpec) -> np.ndarray | None:
    length = int(rng.integers(1, int(spec.max_blur * spec.scale) + 2))
    if length <= 2:
        return None
    return _line_kernel(length, float(rng.uniform(0, 180)))


def _other_kernel(rng: np.random.Generator, spec: SceneSpec) -> np.ndarray | None:
    """Blur the plain generator never uses: defocus discs, Gaussian, accelerating motion."""
    kind = rng.integers(3)
    if kind == 0:  # defocus: a uniform disc
        radius = int(rng.integers(1, max(2, int(6 * spec.scale)) + 1))
        kernel = np.zeros((2 * radius + 1,) * 2, np.float32)
        cv2.circle(kernel, (radius, radius), radius, 1.0, -1, cv2.LINE_AA)
        return kernel / kernel.sum()
    if kind == 1:  # Gaussian
        sigma = rng.uniform(0.5, 4.0) * spec.scale
        g = cv2.getGaussianKernel(2 * int(3 * sigma) + 1, sigma).astype(np.float32)
        return g @ g.T
    length = int(rng.integers(3, int(spec.max_blur * spec.scale) + 3))  # speeding up
    return _line_kernel(length, float(rng.uniform(0, 180)),
                        np.linspace(rng.uniform(0, 0.3), 1, length, dtype=np.float32) ** 2)


def _blend(img: np.ndarray, patch: _Patch, color: np.ndarray) -> None:
    region = patch.region(img)
    cov = patch.cov[..., None]
    region[...] = region * (1 - cov) + color * cov


def _draw_occluders(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                    spec: SceneSpec) -> None:
    """Background things in front of objects: thick cables/branches and irregular blobs.

    Where they cover an object, the truth becomes background.
    """
    h, w = mask.shape
    for _ in range(rng.integers(1, 5)):
        cov = np.zeros((h, w), np.uint8)
        if rng.random() < 0.5:  # a random walk drawn thick
            pts = [rng.uniform([0, 0], [w, h])]
            step = rng.uniform(20, 80) * spec.scale
            heading = rng.uniform(0, 2 * np.pi)
            for _ in range(rng.integers(2, 8)):
                heading += rng.normal(0, 0.6)
                pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
            thickness = int(rng.integers(3, 26) * spec.scale) + 1
            cv2.polylines(cov, [np.round(np.array(pts)).astype(np.int32)], False, 255,
                          thickness, cv2.LINE_AA)
        else:  # an irregular blob: many vertices at random radii (no disc, no polygon class)
            n = int(rng.integers(9, 18))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = rng.uniform(8, 60) * spec.scale * rng.uniform(0.35, 1.0, n)
            center = rng.uniform([0, 0], [w, h])
            pts = center + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            cv2.fillPoly(cov, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
        covf = cov.astype(np.float32)[..., None] / 255.0
        if rng.random() < 0.5:
            paint = rng.uniform(0, 255, 3).astype(np.float32)
        else:  # textured: the frame's own background pattern would hide it; use noise
            paint = cv2.resize(rng.uniform(0, 255, (8, 8, 3)).astype(np.float32), (w, h))
        img[...] = img * (1 - covf) + paint * covf
        mask[cov >= 128] = 0


def _camera(img: np.ndarray, shifts: set[str], rng: np.random.Generator) -> np.ndarray:
    """Camera-side shifts on a float RGB frame in 0-255; returns uint8 RGB."""
    if 'color' in shifts:  # white balance gains, a cast, saturation
        img = img * np.exp(rng.uniform(-0.4, 0.4, 3)) + rng.uniform(-30, 30, 3)
        grey = img.mean(-1, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.2, 1.6)
    if 'exposure' in shifts:  # gain with clipping, then a gamma
        img = np.clip(img * np.exp(rng.uniform(-1.0, 0.8)), 0, 255)
        img = 255.0 * (img / 255.0) ** np.exp(rng.uniform(-0.7, 0.7))
    if 'noise' in shifts:  # shot noise ~ sqrt(signal), read noise, row banding, hot pixels
        img = np.clip(img, 0, 255)
        img = img + np.sqrt(img * rng.uniform(0.05, 2.0)) * rng.standard_normal(img.shape)
        img = img + rng.normal(0, rng.uniform(1, 12), img.shape)
        img = img + rng.normal(0, rng.uniform(0, 5), (img.shape[0], 1, 1))
        hot = rng.random(img.shape[:2]) < rng.uniform(0, 0.003)
        img[hot] = rng.choice([0.0, 255.0], (int(hot.sum()), 1))
    out = np.clip(img, 0, 255).astype(np.uint8)
    if 'mono' in shifts:  # a grey camera: the node expands mono8 to RGB the same way
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if 'jpeg' in shifts:  # compressed transport at a low quality
        quality = int(rng.integers(10, 61))
        ok, data = cv2.imencode('.jpg', cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def generate_scene(rng: np.random.Generator, spec: SceneSpec = SceneSpec()) -> Scene:
    """Draw one scene from the task's distribution (with `spec`'s shifts) using `rng`."""
    shifts = set(spec.shifts)
    if spec.shift_rate > 0 or spec.shift_rates:  # one draw per shift, in SHIFTS order
        shifts |= {s for s in SHIFTS if rng.random() < spec.rate_of(s)}
    if 'aspect' in shifts:
        width, height = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
        spec = replace(spec, width=width, height=height)
    other = 'texture' in shifts
    img = (_other_background if other else _background)(rng, spec).astype(np.float32)
    mask = np.zeros((spec.height, spec.width), np.uint8)
    for _ in range(rng.integers(spec.min_objects, spec.max_objects + 1)):
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        low, high = spec.min_size, spec.max_size
        if spec.small_share > 0 and rng.random() < spec.small_share:  # no draw without it
            low, high = spec.small_sizes
        size = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        size *= spec.scale
        if 'occlusion' in shifts:  # also objects mostly outside the frame
            center = rng.uniform([-size / 2] * 2, [spec.width + size / 2,
                                                   spec.height + size / 2])
        else:
            center = rng.uniform([0, 0], [spec.width, spec.height])
        margin = int(spec.max_blur * spec.scale) + 8
        patch = _coverage(cls, size, center, rng, spec, margin)
        kernel = (_other_kernel if other else _motion_kernel)(rng, spec)
        if patch is None:
            rng.uniform(0, 255, 3)  # the colour: keep the stream as if it were drawn
            continue
        if kernel is not None:
            patch.cov = cv2.filter2D(patch.cov, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        _blend(img, patch, rng.uniform(0, 255, 3).astype(np.float32))
        patch.region(mask)[patch.cov >= 0.5] = cls
    if 'occlusion' in shifts:
        _draw_occluders(img, mask, rng, spec)
    gain = rng.uniform(0.55, 1.45)
    img = img * gain + rng.uniform(-25, 25) + rng.normal(0, rng.uniform(0, 6), img.shape)
    image = _camera(img, shifts, rng)
    return Scene(image=image, mask=mask, boxes=boxes_from_mask(mask),
                 shifts=tuple(s for s in SHIFTS if s in shifts))


def boxes_from_mask(mask: np.ndarray) -> list[tuple[int, int, int, int, int, int]]:
    """Boxes (x0, y0, x1, y1 exclusive, class, pixels) of the connected regions of each class."""
    boxes = []
    for cls in range(1, len(CLASS_NAMES)):
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask == cls).view(np.uint8), 8)
        for x, y, w, h, area in stats[1:n]:
            boxes.append((int(x), int(y), int(x + w), int(y + h), cls, int(area)))
    return boxes


def scene_stream(seed: int, spec: SceneSpec = SceneSpec()):
    """Endless, reproducible stream of scenes for a given seed."""
    rng = np.random.default_rng(seed)
    while True:
        yield generate_scene(rng, spec)
