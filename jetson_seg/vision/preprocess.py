"""Fit a camera frame into the network input, as the model expects it.

Frames whose aspect ratio differs from the network's are letterboxed (scaled to fit, centred,
padded) so shapes are not distorted, or stretched when the model was trained that way
(letterbox.Letterbox: postprocessing maps the output back with the same placement). Float
models get their normalisation folded into one pass over the batch.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from jetson_seg.model_info import InputSpec
from jetson_seg.vision.image_conversion import DecodedImage, resize, resize_to_rgb
from jetson_seg.vision.letterbox import Letterbox


def to_network_input(image: DecodedImage, input_hw: tuple[int, int],
                     out: np.ndarray | None = None, box: Letterbox | None = None) -> np.ndarray:
    """The one way a frame becomes network input: letterboxed RGB on black padding.

    The node, INT8 calibration, the optimizer's checks and training all call this, so the
    network sees the same pixels everywhere (image_conversion.resize is the one resize rule).
    `out` (input_hw x 3 uint8) is reused when given; `box` saves refitting a known size.
    """
    if box is None:
        box = Letterbox.for_input(image.pixels.shape[:2], input_hw)
    if out is None:
        out = np.zeros((*input_hw, 3), np.uint8)
    elif not box.is_identity_aspect:
        out[...] = 0
    content = box.content(out)
    src_wh, dst_wh = (box.src_w, box.src_h), (box.content_w, box.content_h)
    if image.order in ('rgb', 'bgr') and src_wh != dst_wh:  # resized straight into `out`
        resize(image.pixels, dst_wh, dst=content)
        if image.order == 'bgr':
            cv2.cvtColor(content, cv2.COLOR_BGR2RGB, dst=content)
    else:
        content[...] = resize_to_rgb(image, *dst_wh)
    return out


@functools.lru_cache(maxsize=64)
def _placement(image_hw: tuple[int, int], input_hw: tuple[int, int], stretch: bool) -> Letterbox:
    """Letterbox.for_input, remembered: a box is an immutable value, a camera keeps its size."""
    return Letterbox.for_input(image_hw, input_hw, stretch)


class NetworkInput:
    """The network input batch of one model, built in reused buffers.

    Frames are letterboxed (or stretched) as uint8 RGB. A float32 model gets
    (pixel / 255 - mean) / std, channels reordered, from one cv2.transform over its own float
    buffer (0.05 ms at 256x192, where numpy's multiply/subtract took 1.1 ms, 4 ms for bgr
    through a reversed view); a uint8 bgr model gets one cv2.cvtColor.
    """

    def __init__(self, spec: InputSpec, input_hw: tuple[int, int]) -> None:
        self.spec = spec
        self.input_hw = input_hw
        self._pixels = np.zeros((0, *input_hw, 3), np.uint8)
        self._ready = self._pixels
        self._by_batch: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # cameras: 1..N frames
        # out[c] = in[source of c] / (255 std[c]) - mean[c] / std[c]: one 3x4 affine map
        self._affine = np.zeros((3, 4), np.float32)
        for channel in range(3):
            source = 2 - channel if spec.channel_order == 'bgr' else channel
            self._affine[channel, source] = 1.0 / (255.0 * spec.std[channel])
            self._affine[channel, 3] = -spec.mean[channel] / spec.std[channel]

    def letterbox(self, image_hw: tuple[int, int]) -> Letterbox:
        """Placement of a frame of (height, width) `image_hw`, worked out once per frame size."""
        return _placement(image_hw, self.input_hw, self.spec.resize == 'stretch')

    def _resize(self, batch: int) -> None:
        """Buffers for `batch` frames, kept per count so a changing count allocates once."""
        if len(self._pixels) == batch:
            return
        if batch not in self._by_batch:
            pixels = np.zeros((batch, *self.input_hw, 3), np.uint8)
            ready = pixels if self.spec.dtype == 'uint8' and \
                self.spec.channel_order == 'rgb' else \
                np.empty(pixels.shape, np.dtype(self.spec.dtype))
            self._by_batch[batch] = (pixels, ready)
        self._pixels, self._ready = self._by_batch[batch]

    def fill(self, images: list[DecodedImage], boxes: list[Letterbox]) -> np.ndarray:
        """The batch of `images` placed by `boxes`, in the dtype and channel order of the model."""
        self._resize(len(images))
        for slot, (image, box) in enumerate(zip(images, boxes)):
            to_network_input(image, self.input_hw, self._pixels[slot], box)
        return self._finish()

    def _finish(self) -> np.ndarray:
        if self._ready is self._pixels:
            return self._pixels
        rows = (-1, self.input_hw[1], 3)  # the batch as one tall image, for OpenCV
        ready = self._ready.reshape(rows)
        if self.spec.dtype == 'uint8':
            cv2.cvtColor(self._pixels.reshape(rows), cv2.COLOR_RGB2BGR, dst=ready)
        else:
            np.copyto(self._ready, self._pixels)
            cv2.transform(ready, self._affine, dst=ready)
        return self._ready
