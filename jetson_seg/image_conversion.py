"""sensor_msgs Image / CompressedImage <-> numpy, validated before anything is allocated.

Works on any object with the message fields (duck typing), so this core never imports rclpy.
8-bit encodings decode to zero-copy views of the message buffer, row padding included.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class ImageRejected(ValueError):
    """A message that cannot be decoded; `reason` is a short key counted in diagnostics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f'{reason}: {detail}')
        self.reason = reason
        self.detail = detail


#: encoding -> (channels, bytes per channel, channel order)
_ENCODINGS: dict[str, tuple[int, int, str]] = {
    'rgb8': (3, 1, 'rgb'), 'bgr8': (3, 1, 'bgr'), 'rgba8': (4, 1, 'rgba'),
    'bgra8': (4, 1, 'bgra'), 'mono8': (1, 1, 'mono'), '8UC1': (1, 1, 'mono'),
    '8UC3': (3, 1, 'bgr'), '8UC4': (4, 1, 'bgra'), 'mono16': (1, 2, 'mono'),
    '16UC1': (1, 2, 'mono'),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_TO_RGB = {'bgr': cv2.COLOR_BGR2RGB, 'rgba': cv2.COLOR_RGBA2RGB, 'bgra': cv2.COLOR_BGRA2RGB,
           'mono': cv2.COLOR_GRAY2RGB}


@dataclass(frozen=True)
class DecodedImage:
    """HxWxC uint8 pixels (C in 1, 3, 4) and their channel order."""

    pixels: np.ndarray
    order: str  # 'rgb' | 'bgr' | 'rgba' | 'bgra' | 'mono'


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected('zero_size', f'image is {width}x{height}')
    if width * height > max_pixels:
        raise ImageRejected('too_large', f'{width}x{height} exceeds max_image_pixels '
                                         f'{max_pixels}')


def decode_image(msg, max_pixels: int = 4096 * 4096) -> DecodedImage:
    """Decode a sensor_msgs/Image; 8-bit encodings return a view of `msg.data`."""
    layout = _ENCODINGS.get(msg.encoding)
    if layout is None:
        raise ImageRejected('unsupported_encoding',
                            f'{msg.encoding!r} is not one of {list(SUPPORTED_ENCODINGS)}')
    channels, depth, order = layout
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_pixels)
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageRejected('bad_step', f'step {step} < width*bytes per pixel {row_bytes} '
                                        f'for {msg.encoding}')
    buffer = np.frombuffer(msg.data, np.uint8)
    if buffer.size < step * height:
        raise ImageRejected('truncated', f'{buffer.size} bytes of data, need step*height = '
                                         f'{step * height}')
    rows = buffer[:step * height].reshape(height, step)[:, :row_bytes]
    if depth == 1:
        return DecodedImage(rows.reshape(height, width, channels), order)
    dtype = np.dtype('>u2' if msg.is_bigendian else '<u2')
    wide = rows.copy().view(dtype).reshape(height, width, 1)
    return DecodedImage((wide >> 8).astype(np.uint8), order)


def _compressed_kind(fmt: str) -> str:
    lowered = fmt.lower()
    for kind in ('jpeg', 'jpg', 'png'):
        if kind in lowered:
            return 'png' if kind == 'png' else 'jpeg'
    raise ImageRejected('unsupported_format', f'compressed format {fmt!r} is neither jpeg nor png')


def _png_size(data: np.ndarray) -> tuple[int, int] | None:
    if data.size >= 24 and data[:8].tobytes() == b'\x89PNG\r\n\x1a\n':
        return (int.from_bytes(data[16:20].tobytes(), 'big'),
                int.from_bytes(data[20:24].tobytes(), 'big'))
    return None


def decode_compressed(msg, max_pixels: int = 4096 * 4096) -> DecodedImage:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to bgr/bgra/mono pixels."""
    kind = _compressed_kind(msg.format)
    data = np.frombuffer(msg.data, np.uint8)
    if data.size == 0:
        raise ImageRejected('truncated', 'compressed image has no data')
    if kind == 'png':
        size = _png_size(data)
        if size is None:
            raise ImageRejected('corrupt_compressed', 'data does not start with a PNG header')
        _check_size(size[0], size[1], max_pixels)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ImageRejected('corrupt_compressed', f'{kind} data ({data.size} bytes) does not '
                                                  f'decode')
    if pixels.dtype != np.uint8:
        pixels = (pixels >> 8).astype(np.uint8)
    _check_size(pixels.shape[1], pixels.shape[0], max_pixels)
    if pixels.ndim == 2:
        return DecodedImage(pixels[..., None], 'mono')
    return DecodedImage(pixels, {3: 'bgr', 4: 'bgra'}[pixels.shape[2]])


def to_rgb(image: DecodedImage) -> np.ndarray:
    """HxWx3 RGB; the same array (no copy) when the image is already rgb."""
    if image.order == 'rgb':
        return image.pixels
    return cv2.cvtColor(image.pixels, _TO_RGB[image.order])


def resize_to_rgb(image: DecodedImage, width: int, height: int) -> np.ndarray:
    """RGB at the given size, resizing first so the colour conversion runs on fewer pixels."""
    pixels = image.pixels
    if (pixels.shape[1], pixels.shape[0]) != (width, height):
        shrinking = width * height < pixels.shape[0] * pixels.shape[1]
        pixels = cv2.resize(pixels, (width, height),
                            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        if pixels.ndim == 2:
            pixels = pixels[..., None]
    return to_rgb(DecodedImage(pixels, image.order))
