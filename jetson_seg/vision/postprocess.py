"""From network output to the published products: class mask, colours, overlay, regions.

NetworkOutput is the one way there, for the node and for training's evaluation alike: it owns
the buffers reused between frames and makes every choice below; the functions are its steps.

The model's head (model_info.OutputSpec) is turned into per-class scores in [0, 1] whose argmax
is the class: softmax probabilities as they are, logits through a softmax at network size
(49 k pixels, not the frame's 307 k), sigmoid scores behind a background plane held at the
threshold; an argmax head's id map is cropped and resized directly.

Everything works on the input image's pixel grid by default: scores are cropped to the letterbox
content and resized (bilinear) before the argmax, so mask edges fall between input pixels rather
than on the coarse network grid. Scores travel as one uint8 plane per class (score x 255): the
split happens at network size (small) and each plane is resized into a reusable buffer. 8-bit
planes take a quarter of the memory (1.2 MB at 640x480 for 4 classes) and the argmax over them
0.09 ms instead of 0.24; the served INT8 network's softmax has 256 levels anyway, and on the
held-out sets the masks scored within 0.0002 mIoU of float32 planes.

The argmax is first taken at network size; then scores are resized, and the mask, colours,
overlay and regions made, only in windows around the objects found (object_windows): elsewhere
every network pixel behind an output pixel is class 0, and so is their blend. The products are
the same, pixel for pixel and region for region, as over the whole frame; at 640x480 mask and
regions took 0.79 ms instead of 1.06.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import cv2
import numpy as np

from jetson_seg.model_info import ModelInfo, OutputSpec
from jetson_seg.vision.letterbox import Letterbox


@dataclass(frozen=True)
class Region:
    """One connected region of a non-background class, in output-mask pixels."""

    class_id: int
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive
    area: int
    score: float  # mean probability of `class_id` over the region
    color: tuple[float, ...] | None = None  # median colour in [0, 1] (region_colors), or None


#: Scores in [0, 1] are carried as uint8 planes holding score x SCORE_SCALE, rounded.
SCORE_SCALE = 255


def class_scores(raw: np.ndarray, output: OutputSpec) -> np.ndarray:
    """One frame's output (h, w, C) at network size -> scores in [0, 1], argmax = class."""
    if output.type == 'softmax':
        return raw
    if output.type == 'logits':  # argmax unchanged; a region's score is then its mean softmax
        scores = raw - raw.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        return scores
    if output.type == 'sigmoid':  # background wins unless some class exceeds the threshold
        scores = np.empty((*raw.shape[:2], raw.shape[2] + 1), np.float32)
        scores[..., 0] = output.threshold
        scores[..., 1:] = raw
        return scores
    raise ValueError(f'{output.type} output has no class scores (use id_mask)')


def class_ids(raw: np.ndarray, output: OutputSpec) -> np.ndarray:
    """Class id per pixel of a raw output batch at network size, for comparing two runs."""
    if output.type == 'argmax':
        return raw.reshape(raw.shape[:3]).astype(np.int64)
    if output.type == 'sigmoid':
        return np.where(raw.max(-1) > output.threshold, raw.argmax(-1) + 1, 0)
    return raw.argmax(-1)


def id_mask(raw: np.ndarray, letterbox: Letterbox, at_input_resolution: bool) -> np.ndarray:
    """An argmax head's id map (h, w) or (h, w, 1) -> uint8 class mask on the output grid."""
    ids = letterbox.content(raw.reshape(raw.shape[:2])).astype(np.uint8)
    size = (letterbox.src_w, letterbox.src_h)
    if not at_input_resolution or size == (ids.shape[1], ids.shape[0]):
        return ids
    return cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST)


def score_levels(scores: np.ndarray, letterbox: Letterbox) -> list[np.ndarray]:
    """Scores (h, w, C) in [0, 1] -> one uint8 plane per class (x SCORE_SCALE), content only."""
    levels = cv2.convertScaleAbs(np.ascontiguousarray(letterbox.content(scores)),
                                 alpha=SCORE_SCALE)
    return cv2.split(levels) if levels.ndim == 3 else [levels]


def plane_buffers(buffers: list[np.ndarray] | None, count: int,
                  size: tuple[int, int]) -> list[np.ndarray]:
    """`buffers` if they are `count` planes of (width, height) `size`, else new ones."""
    if buffers is None or len(buffers) != count or buffers[0].shape != (size[1], size[0]):
        return [np.empty((size[1], size[0]), np.uint8) for _ in range(count)]
    return buffers


def resize_planes(levels: list[np.ndarray], buffers: list[np.ndarray]) -> list[np.ndarray]:
    """Resize each network-size plane (bilinear) over the whole of its buffer; the buffers."""
    size = (buffers[0].shape[1], buffers[0].shape[0])
    for level, out in zip(levels, buffers):
        cv2.resize(level, size, dst=out, interpolation=cv2.INTER_LINEAR)
    return buffers


@dataclass(frozen=True)
class Window:
    """A rectangle around objects, resized from `read` (network grid) into `out` (output grid).

    Only its part `keep` of the output grid (`inner` within `out`) is exact and kept.
    """

    read: tuple[slice, slice]
    out: tuple[slice, slice]
    keep: tuple[slice, slice]
    inner: tuple[slice, slice]


def _span(start: int, stop: int, scale: tuple[int, int], length: int,
          out_length: int) -> slice:
    """Network-grid span [start, stop) on the output grid.

    `scale` is (numerator, denominator) and `start` a multiple of the denominator, so that
    start x scale is whole.
    """
    num, den = scale
    return slice(start * num // den, out_length if stop == length else stop * num // den)


#: Network pixels kept around each object's box: an output pixel of an object lies within one
#: network pixel of it, so a region never touches the edge of its own window (see find_regions).
WINDOW_MARGIN = 2


def object_windows(labels: np.ndarray, size: tuple[int, int],
                   max_share: float = 0.5) -> list[Window] | None:
    """Windows around each object of a network-size class map, for an output of `size`.

    Outside every window all four network pixels behind an output pixel are class 0, and so is
    the argmax of their bilinear blend (it keeps an order that all four corners share, and
    OpenCV rounds both planes alike): only the windows need resizing. Each window is aligned
    so that its resize gives the same pixels as resizing the whole plane, and reads one step
    more than it keeps, so that its own border never counts. None when that alignment is
    impossible (scale denominators over 16) or the windows cover more than `max_share` of the
    frame (then the whole resize is cheaper).
    """
    height, width = labels.shape
    fraction_x, fraction_y = Fraction(size[0], width), Fraction(size[1], height)
    fx = (fraction_x.numerator, fraction_x.denominator)
    fy = (fraction_y.numerator, fraction_y.denominator)
    qx, qy = fx[1], fy[1]
    if qx > 16 or qy > 16:
        return None
    objects = cv2.compare(labels, 0, cv2.CMP_NE)  # outer contours: 10x cheaper than labels
    outlines = cv2.findContours(objects, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
    windows, area = [], 0
    margin = WINDOW_MARGIN
    for x, y, w, h in map(cv2.boundingRect, outlines):
        x0, y0 = max(0, (x - margin) // qx * qx), max(0, (y - margin) // qy * qy)
        x1 = min(width, -(-(x + w + margin) // qx) * qx)
        y1 = min(height, -(-(y + h + margin) // qy) * qy)
        rx0, ry0 = max(0, x0 - qx), max(0, y0 - qy)
        rx1, ry1 = min(width, x1 + qx), min(height, y1 + qy)
        out = (_span(ry0, ry1, fy, height, size[1]), _span(rx0, rx1, fx, width, size[0]))
        keep = (_span(y0, y1, fy, height, size[1]), _span(x0, x1, fx, width, size[0]))
        inner = tuple(slice(k.start - o.start, k.stop - o.start) for k, o in zip(keep, out))
        windows.append(Window((slice(ry0, ry1), slice(rx0, rx1)), out, keep, inner))
        area += (out[0].stop - out[0].start) * (out[1].stop - out[1].start)
    return None if area > max_share * size[0] * size[1] else windows


def class_mask_in_windows(levels: list[np.ndarray], windows: list[Window],
                          buffers: list[np.ndarray]) -> np.ndarray:
    """The class mask at the buffers' size, computed only inside `windows` (object_windows).

    `buffers` (the full-size score planes) are filled inside the windows only: the rest keeps
    older values, which nothing reads (every pixel of a region lies in a window).
    """
    mask = np.zeros(buffers[0].shape, np.uint8)
    for window in windows:
        size = (window.out[1].stop - window.out[1].start,
                window.out[0].stop - window.out[0].start)
        parts = [cv2.resize(level[window.read], size,
                            interpolation=cv2.INTER_LINEAR)[window.inner] for level in levels]
        for part, full in zip(parts, buffers):
            full[window.keep] = part
        mask[window.keep] = class_mask(parts)
    return mask


@dataclass
class ArgmaxScratch:
    """Buffers `class_mask` reuses between frames: the running maximum and id planes."""

    best: np.ndarray
    id_planes: list[np.ndarray]  # plane k is filled with k: copied through a mask in one call

    @classmethod
    def fitting(cls, scratch: 'ArgmaxScratch | None', shape: tuple[int, ...],
                num_classes: int, dtype=np.uint8) -> 'ArgmaxScratch':
        """`scratch` if it fits `shape`, `num_classes` and the planes' `dtype`, else new ones."""
        if scratch is not None and scratch.best.shape == shape and \
                scratch.best.dtype == dtype and len(scratch.id_planes) == num_classes:
            return scratch
        return cls(np.empty(shape, dtype),
                   [np.full(shape, k, np.uint8) for k in range(num_classes)])


def class_mask(planes: list[np.ndarray], scratch: ArgmaxScratch | None = None) -> np.ndarray:
    """Per-pixel argmax over class planes as uint8 ids (first class wins ties, as np.argmax).

    A running max with OpenCV compare/max/copyTo is ~10x faster than numpy boolean
    assignment and ~20x faster than np.argmax over a short last axis at 640x480. The returned
    mask is new each call (callers publish it); only `scratch` is reused.
    """
    scratch = ArgmaxScratch.fitting(scratch, planes[0].shape, len(planes), planes[0].dtype)
    best = scratch.best
    np.copyto(best, planes[0])
    ids = np.zeros(best.shape, np.uint8)
    for class_id in range(1, len(planes)):
        cv2.copyTo(scratch.id_planes[class_id],
                   cv2.compare(planes[class_id], best, cv2.CMP_GT), ids)
        cv2.max(best, planes[class_id], dst=best)
    return ids


def palette_lut(palette: np.ndarray) -> np.ndarray:
    """A 256-entry colour table (256, 1, 3) uint8 from a (classes, 3) palette."""
    table = np.zeros((256, 1, 3), np.uint8)
    table[:len(palette), 0] = palette
    return table


#: Rectangles of the output grid outside which the mask is all class 0 (object_windows' keeps).
Windows = Sequence[tuple[slice, slice]]


def color_mask(mask: np.ndarray, lut: np.ndarray, windows: Windows | None = None) -> np.ndarray:
    """Class ids -> RGB colours through a palette_lut table.

    OpenCV's user colour map is one table lookup per pixel: 0.26 ms at 640x480, against 0.45 ms
    for a packed 4-byte numpy lookup plus RGBx -> RGB, 0.56 ms for cv2.LUT over the mask
    repeated in three channels and 2.7 ms for numpy indexing of 3-byte rows. With `windows`
    and a black class 0, only the windows are looked up (0.05 ms for two objects).
    """
    if windows is None or lut[0].any():
        return cv2.applyColorMap(mask, lut)
    colors = np.zeros(mask.shape + (3,), np.uint8)
    for keep in windows:
        colors[keep] = cv2.applyColorMap(mask[keep], lut)
    return colors


def blend(rgb: np.ndarray, colors: np.ndarray, mask: np.ndarray, alpha: float,
          windows: Windows | None = None) -> np.ndarray:
    """Blend class colours over the image where a non-background class was found.

    With `windows` only they are blended; the rest is the input as it is.
    """
    if windows is None:
        out = cv2.addWeighted(rgb, 1.0 - alpha, colors, alpha, 0.0)
        cv2.copyTo(rgb, cv2.compare(mask, 0, cv2.CMP_EQ), out)  # background keeps the input
        return out
    out = rgb.copy()
    for keep in windows:
        blended = cv2.addWeighted(rgb[keep], 1.0 - alpha, colors[keep], alpha, 0.0)
        cv2.copyTo(rgb[keep], cv2.compare(mask[keep], 0, cv2.CMP_EQ), blended)
        out[keep] = blended
    return out


def find_regions(mask: np.ndarray, planes: list[np.ndarray] | None, num_classes: int,
                 min_area: int = 1, windows: Windows | None = None) -> list[Region]:
    """Find the 8-connected regions of each non-background class, with their mean score.

    `planes` (one uint8 score plane per class, x SCORE_SCALE) must be on the same grid
    as `mask`; without them (an argmax head) every score is 1.0. Components are labelled only
    inside the box around each class's pixels and scores summed inside each region's box, so
    the cost follows the objects' size (0.37 ms instead of 4.3 ms at 640x480 over whole-image
    labels). With `windows` (class 0 outside them) each window is searched on its own: a
    region that touches a window's inner edge may go on outside it and is left to the window
    that holds it whole (each object's window has a margin around it), and a region two
    windows hold whole is kept once. Regions then come sorted by class, top and left.
    """
    if windows is None:
        return _regions_in(mask, planes, num_classes, min_area, 0, 0)
    height, width = mask.shape
    found = {}
    for rows, cols in windows:
        inside = None if planes is None else [plane[rows, cols] for plane in planes]
        for r in _regions_in(mask[rows, cols], inside, num_classes, min_area, cols.start,
                             rows.start):
            cut = (0 < cols.start == r.x0 or r.x1 == cols.stop < width or
                   0 < rows.start == r.y0 or r.y1 == rows.stop < height)
            if not cut:
                found[(r.class_id, r.x0, r.y0, r.x1, r.y1, r.area)] = r
    return sorted(found.values(), key=lambda r: (r.class_id, r.y0, r.x0))


def _regions_in(mask: np.ndarray, planes: list[np.ndarray] | None, num_classes: int,
                min_area: int, left: int, top: int) -> list[Region]:
    """`find_regions` of one mask, in the coordinates of a frame where it starts at (left, top)."""
    found = []
    for class_id in range(1, num_classes):
        binary = cv2.compare(mask, class_id, cv2.CMP_EQ)
        bx, by, bw, bh = cv2.boundingRect(binary)
        if bw == 0:
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            binary[by:by + bh, bx:bx + bw], connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < min_area:
                continue
            score = 1.0
            if planes is not None:
                window = (slice(by + y, by + y + h), slice(bx + x, bx + x + w))
                inside = labels[y:y + h, x:x + w] == i
                score = float(planes[class_id][window][inside].mean()) / SCORE_SCALE
            x0, y0 = left + bx + x, top + by + y
            found.append(Region(class_id, x0, y0, x0 + w, y0 + h, area, score))
    return found


#: Pixels a region's colour is taken from, about: larger regions are sampled on a stride.
COLOR_SAMPLES = 1024


def region_colors(regions: Sequence[Region], pixels: np.ndarray, ids: np.ndarray
                  ) -> list[Region]:
    """Each region with its median colour: an appearance cue that tells crossing objects apart.

    `pixels` is the input image (H x W x C uint8, regions' boxes in its pixels), `ids` the class
    mask on any grid of its aspect. The colour is the per-channel median (in [0, 1], the image's
    own channel order, alpha left out) of the image under the region's own mask pixels: the
    median, so that outline pixels blended with the background do not pull it. A region with no
    mask pixel of its class in its box keeps `color` None.
    """
    height, width = pixels.shape[:2]
    sy, sx = ids.shape[0] / height, ids.shape[1] / width
    channels = min(pixels.shape[2], 3) if pixels.ndim == 3 else 1
    image = pixels.reshape(height, width, -1)
    out = []
    for region in regions:
        y0, x0 = int(region.y0 * sy), int(region.x0 * sx)
        y1 = max(y0 + 1, math.ceil(region.y1 * sy))
        x1 = max(x0 + 1, math.ceil(region.x1 * sx))
        step = max(1, math.isqrt((y1 - y0) * (x1 - x0) // COLOR_SAMPLES))
        inside = ids[y0:y1:step, x0:x1:step] == region.class_id
        if sy == 1.0 and sx == 1.0:  # the mask at the image's size: a view, no gather
            sample = image[y0:y1:step, x0:x1:step, :channels]
        else:
            rows = ((np.arange(y0, y0 + inside.shape[0] * step, step) + 0.5) / sy).astype(np.intp)
            cols = ((np.arange(x0, x0 + inside.shape[1] * step, step) + 0.5) / sx).astype(np.intp)
            sample = image[np.ix_(np.minimum(rows, height - 1), np.minimum(cols, width - 1))]
            sample = sample[..., :channels]
        picked = sample[inside]
        color = None
        if len(picked):  # the middle value of each channel (np.median's upper one: no mean)
            middle = len(picked) // 2
            color = tuple(float(v) / 255.0 for v in np.partition(picked, middle, axis=0)[middle])
        out.append(replace(region, color=color))
    return out


#: Frame sizes a NetworkOutput keeps buffers for: a stream of odd sizes must not grow them.
MAX_CACHED_SIZES = 16


def _keep(cache: dict, key, value):
    """Store `value` under `key` in a per-frame-size cache and return it.

    A full cache is emptied first (MAX_CACHED_SIZES).
    """
    if cache.get(key) is not value:
        if len(cache) >= MAX_CACHED_SIZES:
            cache.clear()
        cache[key] = value
    return value


@dataclass(frozen=True)
class ClassMask:
    """One frame's class mask and what its regions and pictures are made from.

    `planes` may be buffers of the NetworkOutput that made it: read them before its next frame
    of the same size.
    """

    ids: np.ndarray  # uint8 class per pixel, at the input image's size or on the output grid
    planes: list[np.ndarray] | None  # uint8 score per class on the same grid; None: argmax head
    windows: Windows | None  # class 0 outside these; None: objects may be anywhere
    input_size: tuple[int, int]  # (width, height) of the input image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the mask grid."""
        return self.ids.shape[1], self.ids.shape[0]


class NetworkOutput:
    """One model's raw output -> class mask, regions in input pixels, colour mask and overlay.

    Owns what the steady state reuses: score planes and argmax scratch per frame size (cameras
    of different sizes each keep their own) and the palette's colour table.
    """

    def __init__(self, info: ModelInfo) -> None:
        self.head = info.output
        self.num_classes = info.num_classes
        self.palette = np.array(info.class_colors, np.uint8)
        self._lut = palette_lut(self.palette)
        self._planes: dict[tuple[int, int], list[np.ndarray]] = {}
        self._argmax: dict[tuple[int, ...], ArgmaxScratch] = {}

    def mask(self, raw: np.ndarray, box: Letterbox,
             at_input_resolution: bool = True) -> ClassMask:
        """One frame's output (h, w, C) -> its class mask, at the input image's size or not.

        `box` places the frame in the network input; an output smaller than the input covers
        the letterboxed input all the same, so the box is placed on its grid.
        """
        box = box.on_grid(raw.shape[1], raw.shape[0])
        size = (box.src_w, box.src_h)
        if self.head.type == 'argmax':
            return ClassMask(id_mask(raw, box, at_input_resolution), None, None, size)
        levels = score_levels(class_scores(raw, self.head), box)
        net_mask = class_mask(levels, self._scratch(levels[0].shape, len(levels)))
        if not at_input_resolution or size == (net_mask.shape[1], net_mask.shape[0]):
            return ClassMask(net_mask, levels, None, size)
        planes = _keep(self._planes, size,
                       plane_buffers(self._planes.get(size), len(levels), size))
        windows = object_windows(net_mask, size)
        if windows is not None:  # resize only around objects: the same mask, cheaper
            return ClassMask(class_mask_in_windows(levels, windows, planes), planes,
                             tuple(window.keep for window in windows), size)
        resize_planes(levels, planes)
        ids = class_mask(planes, self._scratch(planes[0].shape, len(planes)))
        return ClassMask(ids, planes, None, size)

    def _scratch(self, shape: tuple[int, int], classes: int) -> ArgmaxScratch:
        return _keep(self._argmax, shape,
                     ArgmaxScratch.fitting(self._argmax.get(shape), shape, classes))

    def regions(self, mask: ClassMask, min_area: int = 1) -> list[Region]:
        """The mask's regions of `min_area` mask pixels or more, boxes in input-image pixels."""
        found = find_regions(mask.ids, mask.planes, self.num_classes, min_area, mask.windows)
        if mask.size == mask.input_size:
            return found
        sx, sy = mask.input_size[0] / mask.size[0], mask.input_size[1] / mask.size[1]
        return [Region(r.class_id, round(r.x0 * sx), round(r.y0 * sy), round(r.x1 * sx),
                       round(r.y1 * sy), r.area, r.score) for r in found]

    def colors(self, ids: np.ndarray, windows: Windows | None = None) -> np.ndarray:
        """The class colours of a mask (`windows`: class 0 outside them), on its grid."""
        return color_mask(ids, self._lut, windows)

    @staticmethod
    def overlay(rgb: np.ndarray, colors: np.ndarray, ids: np.ndarray, alpha: float,
                windows: Windows | None = None) -> np.ndarray:
        """The colours blended over the image at its size (a smaller mask is scaled up first)."""
        height, width = rgb.shape[:2]
        if colors.shape[:2] != (height, width):
            colors = cv2.resize(colors, (width, height), interpolation=cv2.INTER_NEAREST)
            ids = cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST)
        return blend(rgb, colors, ids, alpha, windows)
