"""The node's image input as its subscription delivers it: read, checked, decoded.

A raw Image arrives as CDR bytes and is read in place (serialized.py); bytes that cannot be read
become an UnreadableImage that `check` rejects like any malformed image, so it is counted. A
CompressedImage arrives as a message. Depth images come either way too (raw or compressedDepth).
"""

from __future__ import annotations

from typing import Callable

from sensor_msgs.msg import CompressedImage

from jetson_seg.ros.serialized import ReceivedImage, UnreadableImage, received_image
from jetson_seg.vision.compressed_depth import check_compressed_depth, decode_compressed_depth
from jetson_seg.vision.image_conversion import (DecodedImage, DepthImage, ImageRejected,
                                                check_compressed, check_depth, check_image,
                                                decode_compressed, decode_depth, decode_image)


def readable(data: bytes) -> ReceivedImage | UnreadableImage:
    """A raw subscription's bytes as an image read in place (no Python Image, no copy)."""
    try:
        return received_image(data)
    except ImageRejected as exc:
        return UnreadableImage(exc)


def _by_transport(msg, raw: Callable, compressed: Callable, max_pixels: int):
    """`raw` or `compressed` applied to the message as it came; unreadable bytes raise."""
    if isinstance(msg, UnreadableImage):
        raise msg.error
    return (compressed if isinstance(msg, CompressedImage) else raw)(msg, max_pixels)


def check(msg, max_pixels: int) -> None:
    """Header-only validation in the callback: a malformed message never displaces a frame."""
    _by_transport(msg, check_image, check_compressed, max_pixels)


def decode(msg, max_pixels: int) -> DecodedImage:
    """The pixels of a checked message."""
    return _by_transport(msg, decode_image, decode_compressed, max_pixels)


def check_depth_message(msg, max_pixels: int) -> None:
    """Header-only validation of a depth image, raw or compressedDepth, in its callback."""
    _by_transport(msg, check_depth, check_compressed_depth, max_pixels)


def decode_depth_message(msg, max_pixels: int) -> DepthImage:
    """The depth values of a checked depth message, raw or compressedDepth."""
    return _by_transport(msg, decode_depth, decode_compressed_depth, max_pixels)
