"""Build sensor_msgs images in any encoding, with row padding, the way camera drivers do.

And read a published mask back; build depth images as compressedDepth sends them.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from jetson_seg.training.depth_scenes import millimetres
from jetson_seg.vision.image_conversion import decode_image


def stamped(msg, index: int, frame_id: str = 'camera'):
    msg.header.stamp.sec = 1000 + index
    msg.header.stamp.nanosec = 123 + index
    msg.header.frame_id = frame_id
    return msg


def mask_array(msg) -> np.ndarray:
    """A published mask (mono8) as an HxW array of class ids."""
    assert msg.encoding == 'mono8'
    return decode_image(msg).pixels[..., 0]


def yuv422_from_rgb(rgb: np.ndarray, order: str) -> np.ndarray:
    """Pack RGB as YUV 4:2:2 (BT.601 studio swing, chroma of each pixel pair averaged)."""
    r, g, b = (rgb[..., i].astype(float) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    u, v = ((c[:, 0::2] + c[:, 1::2]) / 2 for c in (u, v))
    out = np.empty(rgb.shape[:2] + (2,), float)
    out[..., 0 if order == 'yuyv' else 1] = y
    chroma = np.empty(rgb.shape[:2])
    chroma[:, 0::2], chroma[:, 1::2] = u, v
    out[..., 1 if order == 'yuyv' else 0] = chroma
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def bayer_from_rgb(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """The Bayer mosaic a sensor with `pattern` (e.g. 'rggb': R G / G B) records of `rgb`."""
    channel = {'r': 0, 'g': 1, 'b': 2}
    out = np.empty(rgb.shape[:2], np.uint8)
    for index, letter in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[letter]]
    return out[..., None]


def image_from_rgb(rgb: np.ndarray, encoding: str, pad: int = 0) -> Image:
    """Encode an RGB array as `encoding` (rgb8, mono8, uyvy, ...) with `pad` bytes per row."""
    converted = {
        'uyvy': lambda a: yuv422_from_rgb(a, 'uyvy'), 'yuyv': lambda a: yuv422_from_rgb(a, 'yuyv'),
        'bayer_rggb8': lambda a: bayer_from_rgb(a, 'rggb'),
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


def rvl(image: np.ndarray) -> bytes:
    """RVL of a uint16 image: width, height, then nibble-packed runs and zig-zag deltas."""
    nibbles: list[int] = []

    def put(value: int) -> None:
        while True:
            low, value = value & 7, value >> 3
            nibbles.append(low | (8 if value else 0))
            if not value:
                return

    flat, previous, i = [int(v) for v in image.ravel()], 0, 0
    while i < len(flat):
        start = i
        while i < len(flat) and flat[i] == 0:
            i += 1
        put(i - start)
        start = i
        while i < len(flat) and flat[i] != 0:
            i += 1
        put(i - start)
        for value in flat[start:i]:
            delta = value - previous
            put((delta << 1) ^ (delta >> 31))
            previous = value
    nibbles += [0] * (-len(nibbles) % 8)
    words = [int(''.join(f'{n:x}' for n in nibbles[k:k + 8]), 16)
             for k in range(0, len(nibbles), 8)]
    return struct.pack('<II', image.shape[1], image.shape[0]) + \
        np.array(words, '<u4').tobytes()


def compressed_depth(metres: np.ndarray, encoding: str, codec: str = 'png',
                     fmt: str | None = None, depth_max: float = 10.0,
                     quantization: float = 100.0) -> CompressedImage:
    """A CompressedImage as the compressedDepth publisher makes it (NaN: no reading)."""
    quant_a = quant_b = 0.0
    if encoding == '16UC1':
        values = millimetres(metres)
    else:
        quant_a = np.float32(quantization * (quantization + 1.0))
        quant_b = np.float32(1.0 - quant_a / np.float32(depth_max))
        with np.errstate(invalid='ignore'):
            near = metres < depth_max
        values = np.zeros(metres.shape, np.uint16)
        values[near] = (quant_a / metres[near].astype(np.float32) + quant_b).astype(np.uint16)
    image = cv2.imencode('.png', values)[1].tobytes() if codec == 'png' else rvl(values)
    return CompressedImage(format=fmt or f'{encoding}; compressedDepth {codec}',
                           data=struct.pack('<iff', 0, quant_a, quant_b) + image)
