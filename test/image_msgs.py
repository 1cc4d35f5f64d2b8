"""Build sensor_msgs images in any encoding, with row padding, the way camera drivers do."""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image


def stamped(msg, index: int, frame_id: str = 'camera'):
    msg.header.stamp.sec = 1000 + index
    msg.header.stamp.nanosec = 123 + index
    msg.header.frame_id = frame_id
    return msg


def image_from_rgb(rgb: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """Encode an RGB array as `encoding` (rgb8, bgr8, mono8, ...) with `pad` bytes per row."""
    converted = {
        'rgb8': lambda a: a, 'bgr8': lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2BGR),
        'rgba8': lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2RGBA),
        'bgra8': lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2BGRA),
        'mono8': lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY),
    }[encoding](rgb)
    h, w = converted.shape[:2]
    row = converted.reshape(h, -1)
    padded = np.zeros((h, row.shape[1] + pad), np.uint8)
    padded[:, :row.shape[1]] = row
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


def compressed_from_rgb(rgb: np.ndarray, fmt: str) -> CompressedImage:
    """JPEG or PNG CompressedImage of an RGB array (stored as bgr8, like image_transport)."""
    ok, buf = cv2.imencode('.' + fmt, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format=f'bgr8; {fmt} compressed bgr8')
    msg.data = buf.tobytes()
    return msg
