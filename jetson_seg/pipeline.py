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
from jetson_seg.image_conversion import DecodedImage, resize_to_rgb, to_rgb
from jetson_seg.postprocess import (Region, class_mask, color_mask, overlay,
                                    probabilities_for_output, regions)
from jetson_seg.preprocess import Letterbox


@dataclass(frozen=True)
class PipelineConfig:
    """Tunables that change what is produced, not which model runs."""

    mask_at_input_resolution: bool = True
    overlay_alpha: float = 0.5
    min_region_area: int = 4


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
    timings_ms: dict[str, float] = field(default_factory=dict)


class SegmentationPipeline:
    """Runs one frame at a time through preprocessing, the engine and postprocessing."""

    def __init__(self, engine: Engine, palette: np.ndarray, config: PipelineConfig) -> None:
        self.engine = engine
        self.palette = np.ascontiguousarray(palette, np.uint8)
        self.config = config
        self._box: Letterbox | None = None
        self._net_input: np.ndarray | None = None

    def _letterbox_for(self, width: int, height: int) -> Letterbox:
        box = self._box
        if box is None or (box.src_w, box.src_h) != (width, height):
            net_h, net_w = self.engine.input_hw
            box = self._box = Letterbox.fit(width, height, net_w, net_h)
            self._net_input = np.zeros((1, net_h, net_w, 3), np.uint8)
        return box

    def run(self, image: DecodedImage, wanted: Wanted = Wanted()) -> FrameResult:
        """Segment one decoded frame and build the requested products."""
        result = FrameResult()
        clock = time.perf_counter
        t0 = clock()
        height, width = image.pixels.shape[:2]
        box = self._letterbox_for(width, height)
        small = resize_to_rgb(image, box.content_w, box.content_h)
        box.apply(small, out=self._net_input[0])
        t1 = clock()
        probs = self.engine.infer(self._net_input)[0]
        t2 = clock()
        probs_out = probabilities_for_output(probs, box, self.config.mask_at_input_resolution)
        mask = class_mask(probs_out)
        if wanted.mask:
            result.mask = mask
        if wanted.detections:
            sx, sy = width / mask.shape[1], height / mask.shape[0]
            result.regions = [
                Region(r.class_id, round(r.x0 * sx), round(r.y0 * sy), round(r.x1 * sx),
                       round(r.y1 * sy), r.area, r.score)
                for r in regions(mask, probs_out, self.config.min_region_area)]
        if wanted.color_mask or wanted.overlay:
            colors = color_mask(mask, self.palette)
            if wanted.color_mask:
                result.color_mask = colors
            if wanted.overlay:
                result.overlay = self._overlay(to_rgb(image), colors, mask)
        t3 = clock()
        result.timings_ms = {'preprocess': (t1 - t0) * 1e3, 'inference': (t2 - t1) * 1e3,
                             'postprocess': (t3 - t2) * 1e3}
        return result

    def _overlay(self, rgb: np.ndarray, colors: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Blend at input resolution (a network-resolution mask is scaled up first)."""
        height, width = rgb.shape[:2]
        if colors.shape[:2] != (height, width):
            colors = cv2.resize(colors, (width, height), interpolation=cv2.INTER_NEAREST)
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        return overlay(rgb, colors, mask, self.config.overlay_alpha)
