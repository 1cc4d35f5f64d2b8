"""Decoded frame -> network input -> engine -> mask, colours, overlay, regions, with stage timings.

Only the products asked for are computed, and buffers are reused between frames of the same size
so the steady state allocates little.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.model_info import ModelInfo
from jetson_seg.vision.image_conversion import DecodedImage, to_rgb
from jetson_seg.vision.letterbox import Letterbox
from jetson_seg.vision.postprocess import NetworkOutput, Region, Windows, region_colors
from jetson_seg.vision.preprocess import NetworkInput


@dataclass(frozen=True)
class PipelineConfig:
    """Tunables that change what is produced, not which model runs."""

    mask_at_input_resolution: bool = True
    overlay_alpha: float = 0.5
    min_region_area: int = 32
    # Each region's median colour (Region.color): only the tracker's colour cue reads it, so the
    # node turns it off with tracking.color_weight 0 (about 0.4 ms a 640x480 frame saved).
    region_colors: bool = True


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
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the input image, always set
    timings_ms: dict[str, float] = field(default_factory=dict)
    class_ids: np.ndarray | None = field(default=None, repr=False)  # the mask, even unwanted
    windows: Windows | None = field(default=None, repr=False)  # class 0 outside these


@dataclass
class Inferred:
    """Engine output for a batch, waiting for postprocessing (times are per frame)."""

    boxes: list[Letterbox]
    images: list[DecodedImage]  # the frames (their regions' colours are read from them)
    probs: np.ndarray
    preprocess_ms: float
    inference_ms: float


class SegmentationPipeline:
    """Runs frames through preprocessing (NetworkInput), the engine and NetworkOutput.

    `config` may be replaced between frames (the node does when its parameters change).
    """

    def __init__(self, engine: Engine, info: ModelInfo, config: PipelineConfig) -> None:
        self.engine = engine
        self.info = info
        self.config = config
        self.input = NetworkInput(info.input, engine.input_hw)
        self.output = NetworkOutput(info)

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
        boxes = [self.input.letterbox(image.pixels.shape[:2]) for image in images]
        batch = self.input.fill(images, boxes)
        t1 = clock()
        probs = self.engine.infer(batch)
        t2 = clock()
        return Inferred(boxes, images, probs, (t1 - t0) * 1e3 / len(images),
                        (t2 - t1) * 1e3 / len(images))

    def finish_batch(self, inferred: Inferred, wanted: list[Wanted]) -> list[FrameResult]:
        """Build the mask and regions of every frame of an inferred batch.

        The viewer images come after (`add_views`), so that a caller can send what a robot acts
        on before spending time on pictures for people.
        """
        results = []
        for slot, box in enumerate(inferred.boxes):
            start = time.perf_counter()
            result = self._finish(inferred.probs[slot], box, wanted[slot],
                                  inferred.images[slot])
            result.timings_ms = {'preprocess': inferred.preprocess_ms,
                                 'inference': inferred.inference_ms,
                                 'postprocess': (time.perf_counter() - start) * 1e3}
            results.append(result)
        return results

    def _finish(self, raw: np.ndarray, box: Letterbox, wanted: Wanted,
                image: DecodedImage) -> FrameResult:
        mask = self.output.mask(raw, box, self.config.mask_at_input_resolution)
        result = FrameResult(mask=mask.ids if wanted.mask else None, mask_size=mask.size,
                             image_size=(box.src_w, box.src_h), class_ids=mask.ids,
                             windows=mask.windows)
        if wanted.detections:
            result.regions = self.output.regions(mask, self.config.min_region_area)
            if self.config.region_colors:
                result.regions = region_colors(result.regions, image.pixels, mask.ids)
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
        colors = self.output.colors(result.class_ids, result.windows)
        if wanted.color_mask:
            result.color_mask = colors
        colored = clock()
        result.timings_ms['postprocess'] = result.timings_ms.get('postprocess', 0.0) + \
            (colored - start) * 1e3
        if wanted.overlay:
            result.overlay = self.output.overlay(to_rgb(image), colors, result.class_ids,
                                                 self.config.overlay_alpha, result.windows)
            result.timings_ms['overlay'] = (clock() - colored) * 1e3
