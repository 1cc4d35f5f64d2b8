"""Decoded frame -> network input -> engine -> mask, colours, overlay, regions, with stage timings.

Only the products asked for are computed, and buffers are reused between frames of the same size
so the steady state allocates little.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.model_info import ModelInfo
from jetson_seg.vision.image_conversion import DecodedImage, to_rgb
from jetson_seg.vision.postprocess import (ArgmaxScratch, Region, class_mask,
                                           class_mask_in_windows, class_scores, color_mask,
                                           id_mask, object_windows, overlay, palette_lut,
                                           plane_buffers, regions, resize_planes,
                                           score_levels, Windows)
from jetson_seg.vision.letterbox import Letterbox
from jetson_seg.vision.preprocess import NetworkInput


@dataclass(frozen=True)
class PipelineConfig:
    """Tunables that change what is produced, not which model runs."""

    mask_at_input_resolution: bool = True
    overlay_alpha: float = 0.5
    min_region_area: int = 32


@dataclass(frozen=True)
class Wanted:
    """Which products to compute for a frame (the node sets these from subscriber counts)."""

    mask: bool = True
    color_mask: bool = True
    overlay: bool = True
    detections: bool = True

    @property
    def anything(self) -> bool:
        return self.mask or self.color_mask or self.overlay or self.detections


@dataclass
class FrameResult:
    """Products of one frame; coordinates of `regions` are in input-image pixels."""

    mask: np.ndarray | None = None
    color_mask: np.ndarray | None = None
    overlay: np.ndarray | None = None
    regions: list[Region] | None = None
    mask_size: tuple[int, int] = (0, 0)  # (width, height) of the mask grid, always set
    timings_ms: dict[str, float] = field(default_factory=dict)
    class_ids: np.ndarray | None = field(default=None, repr=False)  # the mask, even unwanted
    windows: Windows | None = field(default=None, repr=False)  # class 0 outside these


@dataclass
class Inferred:
    """Engine output for a batch, waiting for postprocessing (times are per frame)."""

    images: list[DecodedImage]
    boxes: list[Letterbox]
    probs: np.ndarray
    preprocess_ms: float
    inference_ms: float


def _keep(cache: dict, key, value):
    """Store `value` under `key` in a per-frame-size cache and return it.

    A full cache (16 sizes) is emptied first: a stream of odd sizes must not grow it.
    """
    if cache.get(key) is not value:
        if len(cache) >= 16:
            cache.clear()
        cache[key] = value
    return value


class SegmentationPipeline:
    """Runs one frame at a time through preprocessing, the engine and postprocessing."""

    def __init__(self, engine: Engine, info: ModelInfo, config: PipelineConfig) -> None:
        self.engine = engine
        self.info = info
        self.palette = np.array(info.class_colors, np.uint8)
        self._lut = palette_lut(self.palette)
        self.config = config
        self._boxes: dict[tuple[int, int], Letterbox] = {}
        self._input = NetworkInput(info.input, engine.input_hw)
        # per frame size: cameras of different sizes each keep their own buffers
        self._planes: dict[tuple[int, int], list[np.ndarray]] = {}
        self._argmax: dict[tuple[int, ...], ArgmaxScratch] = {}

    def _letterbox_for(self, width: int, height: int) -> Letterbox:
        box = self._boxes.get((width, height))
        if box is None:
            box = _keep(self._boxes, (width, height), self._input.letterbox((height, width)))
        return box

    def run(self, image: DecodedImage, wanted: Wanted = Wanted()) -> FrameResult:
        """Segment one decoded frame and build the requested products."""
        return self.run_batch([image], [wanted])[0]

    def run_batch(self, images: list[DecodedImage], wanted: list[Wanted]) -> list[FrameResult]:
        """Segment frames of any sizes in one engine call (several cameras, one model)."""
        results = self.finish_batch(self.infer_batch(images), wanted)
        for image, result, want in zip(images, results, wanted):
            self.add_views(result, image, want)
        return results

    def infer_batch(self, images: list[DecodedImage]) -> Inferred:
        """Preprocess and run the engine; the result owns its probabilities.

        Split from `finish_batch` so a caller can overlap the next frame's inference with this
        frame's postprocessing on another core.
        """
        clock = time.perf_counter
        t0 = clock()
        boxes = [self._letterbox_for(image.pixels.shape[1], image.pixels.shape[0])
                 for image in images]
        batch = self._input.fill(images, boxes)
        t1 = clock()
        probs = self.engine.infer(batch)
        t2 = clock()
        return Inferred(images, boxes, probs, (t1 - t0) * 1e3 / len(images),
                        (t2 - t1) * 1e3 / len(images))

    def finish_batch(self, inferred: Inferred, wanted: list[Wanted]) -> list[FrameResult]:
        """Build the mask and regions of every frame of an inferred batch.

        The viewer images come after (`add_views`), so that a caller can send what a robot acts
        on before spending time on pictures for people.
        """
        results = []
        for slot, image in enumerate(inferred.images):
            start = time.perf_counter()
            result = self._finish(inferred.probs[slot], image, inferred.boxes[slot],
                                  wanted[slot])
            result.timings_ms = {'preprocess': inferred.preprocess_ms,
                                 'inference': inferred.inference_ms,
                                 'postprocess': (time.perf_counter() - start) * 1e3}
            results.append(result)
        return results

    def _class_mask(self, raw: np.ndarray, box: Letterbox) -> tuple[
            np.ndarray, list[np.ndarray] | None, Windows | None]:
        """Mask on the output grid, its score planes and the windows holding its objects.

        The planes are None for an argmax head; the windows None when objects may be anywhere.
        """
        at_input = self.config.mask_at_input_resolution
        if self.info.output.type == 'argmax':
            return id_mask(raw, box, at_input), None, None
        levels = score_levels(class_scores(raw, self.info.output), box)
        net_mask = class_mask(levels, self._scratch(levels[0].shape, len(levels)))
        size = (box.src_w, box.src_h)
        if not at_input or size == (net_mask.shape[1], net_mask.shape[0]):
            return net_mask, levels, None
        planes = _keep(self._planes, size,
                       plane_buffers(self._planes.get(size), len(levels), size))
        windows = object_windows(net_mask, size)
        if windows is not None:  # resize only around objects: the same mask, cheaper
            return (class_mask_in_windows(levels, windows, planes), planes,
                    tuple(window.keep for window in windows))
        resize_planes(levels, planes)
        return class_mask(planes, self._scratch(planes[0].shape, len(planes))), planes, None

    def _scratch(self, shape: tuple[int, int], classes: int) -> ArgmaxScratch:
        return _keep(self._argmax, shape,
                     ArgmaxScratch.fitting(self._argmax.get(shape), shape, classes))

    def _finish(self, raw: np.ndarray, image: DecodedImage, box: Letterbox,
                wanted: Wanted) -> FrameResult:
        result = FrameResult()
        height, width = image.pixels.shape[:2]
        # the network's output may be smaller than its input: place the box on its grid
        box = box.on_grid(raw.shape[1], raw.shape[0])
        mask, planes, result.windows = self._class_mask(raw, box)
        result.mask_size = (mask.shape[1], mask.shape[0])
        result.class_ids = mask
        if wanted.mask:
            result.mask = mask
        if wanted.detections:
            sx, sy = width / mask.shape[1], height / mask.shape[0]
            result.regions = [
                Region(r.class_id, round(r.x0 * sx), round(r.y0 * sy), round(r.x1 * sx),
                       round(r.y1 * sy), r.area, r.score)
                for r in regions(mask, planes, self.info.num_classes,
                                 self.config.min_region_area, result.windows)]
        return result

    def add_views(self, result: FrameResult, image: DecodedImage, wanted: Wanted) -> None:
        """Add the colour mask and overlay `wanted` to a finished frame.

        The colour mask's time counts as postprocessing; the overlay is timed as a stage of its
        own (`overlay`), a picture for people that only some deployments subscribe.
        """
        if not (wanted.color_mask or wanted.overlay):
            return
        clock = time.perf_counter
        start = clock()
        colors = color_mask(result.class_ids, self._lut, result.windows)
        if wanted.color_mask:
            result.color_mask = colors
        colored = clock()
        result.timings_ms['postprocess'] = result.timings_ms.get('postprocess', 0.0) + \
            (colored - start) * 1e3
        if wanted.overlay:
            result.overlay = self._overlay(to_rgb(image), colors, result.class_ids,
                                           result.windows)
            result.timings_ms['overlay'] = (clock() - colored) * 1e3

    def _overlay(self, rgb: np.ndarray, colors: np.ndarray, mask: np.ndarray,
                 windows: Windows | None) -> np.ndarray:
        """Blend at input resolution (a network-resolution mask is scaled up first)."""
        height, width = rgb.shape[:2]
        if colors.shape[:2] != (height, width):
            colors = cv2.resize(colors, (width, height), interpolation=cv2.INTER_NEAREST)
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        return overlay(rgb, colors, mask, self.config.overlay_alpha, windows)
