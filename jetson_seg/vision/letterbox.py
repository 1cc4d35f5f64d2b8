"""Where a camera frame sits in the network's grid: the geometry both directions share.

Preprocessing places the frame in the network input with it; postprocessing crops the network
output back to the frame with the same placement, scaled onto the output grid when the network
answers at a fraction of its input, so a mask pixel lines up with the input pixel it labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def round_half_up(value: float) -> int:
    """Nearest integer, halves up: both edges of a grid round the same way (round() does not)."""
    return math.floor(value + 0.5)


@dataclass(frozen=True)
class Letterbox:
    """Where an input image of `src_size` sits inside a network grid of `dst_size`.

    The grid is the network's input, or its output when that is smaller (`on_grid`).
    """

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    pad_x: int
    pad_y: int
    content_w: int
    content_h: int

    @classmethod
    def for_input(cls, image_hw: tuple[int, int], input_hw: tuple[int, int],
                  stretch: bool = False) -> 'Letterbox':
        """Placement of an image of (height, width) `image_hw` in a network of `input_hw`."""
        if stretch:  # the whole input, aspect not kept: content fills the network input
            return cls(image_hw[1], image_hw[0], input_hw[1], input_hw[0], 0, 0,
                       input_hw[1], input_hw[0])
        return cls.fit(image_hw[1], image_hw[0], input_hw[1], input_hw[0])

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int) -> 'Letterbox':
        scale = min(dst_w / src_w, dst_h / src_h)
        content_w = min(dst_w, max(1, int(round(src_w * scale))))
        content_h = min(dst_h, max(1, int(round(src_h * scale))))
        return cls(src_w, src_h, dst_w, dst_h, (dst_w - content_w) // 2,
                   (dst_h - content_h) // 2, content_w, content_h)

    @property
    def is_identity_aspect(self) -> bool:
        return self.content_w == self.dst_w and self.content_h == self.dst_h

    def on_grid(self, width: int, height: int) -> 'Letterbox':
        """The same placement on an output grid of another size, edges rounded.

        Why: many networks answer at a fraction of their input (SegFormer at 1/4, the default
        model with a stride-2 stem at 1/2); their scores cover the letterboxed input all the
        same.
        """
        if (width, height) == (self.dst_w, self.dst_h):
            return self
        fx, fy = width / self.dst_w, height / self.dst_h
        x0, y0 = round_half_up(self.pad_x * fx), round_half_up(self.pad_y * fy)
        x1 = max(x0 + 1, round_half_up((self.pad_x + self.content_w) * fx))
        y1 = max(y0 + 1, round_half_up((self.pad_y + self.content_h) * fy))
        return Letterbox(self.src_w, self.src_h, width, height, x0, y0, x1 - x0, y1 - y0)

    def content(self, net_output: np.ndarray) -> np.ndarray:
        """The part of a dst-size array that covers the input image (a view, no copy)."""
        return net_output[self.pad_y:self.pad_y + self.content_h,
                          self.pad_x:self.pad_x + self.content_w]
