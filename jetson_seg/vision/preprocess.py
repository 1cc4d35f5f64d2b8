"""Fit a camera frame into the network input, and map the network output back exactly.

Frames whose aspect ratio differs from the network's are letterboxed (scaled to fit, centred,
padded) so shapes are not distorted; the inverse crops the padding and scales back to the input
size, so a mask pixel lines up with the input pixel it labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Where an input image of `src_size` sits inside the network input of `dst_size`."""

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    scale: float
    pad_x: int
    pad_y: int
    content_w: int
    content_h: int

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int) -> 'Letterbox':
        scale = min(dst_w / src_w, dst_h / src_h)
        content_w = min(dst_w, max(1, int(round(src_w * scale))))
        content_h = min(dst_h, max(1, int(round(src_h * scale))))
        return cls(src_w, src_h, dst_w, dst_h, scale, (dst_w - content_w) // 2,
                   (dst_h - content_h) // 2, content_w, content_h)

    @property
    def is_identity_aspect(self) -> bool:
        return self.content_w == self.dst_w and self.content_h == self.dst_h

    def apply(self, rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Resize `rgb` (src size) into a dst-size image; reuses `out` when given."""
        if out is None:
            out = np.zeros((self.dst_h, self.dst_w, rgb.shape[2]), rgb.dtype)
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        region = out[self.pad_y:self.pad_y + self.content_h,
                     self.pad_x:self.pad_x + self.content_w]
        if (rgb.shape[1], rgb.shape[0]) == (self.content_w, self.content_h):
            region[...] = rgb
        else:
            cv2.resize(rgb, (self.content_w, self.content_h), dst=region, interpolation=interp)
        return out

    def content(self, net_output: np.ndarray) -> np.ndarray:
        """The part of a dst-size array that covers the input image (a view, no copy)."""
        return net_output[self.pad_y:self.pad_y + self.content_h,
                          self.pad_x:self.pad_x + self.content_w]
