"""The node's image input as its subscription delivers it: read, checked, decoded.

A raw Image arrives as CDR bytes and is read in place (serialized.py); bytes that cannot be read
become an UnreadableImage that `check` rejects like any malformed image, so it is counted. A
CompressedImage arrives as a message.
"""

from __future__ import annotations

from sensor_msgs.msg import CompressedImage

from jetson_seg.ros.serialized import ReceivedImage, UnreadableImage, received_image
from jetson_seg.vision.image_conversion import (DecodedImage, ImageRejected, check_compressed,
                                                check_image, decode_compressed, decode_image)


def readable(data: bytes) -> ReceivedImage | UnreadableImage:
    """A raw subscription's bytes as an image read in place (no Python Image, no copy)."""
    try:
        return received_image(data)
    except ImageRejected as exc:
        return UnreadableImage(exc)


def check(msg, max_pixels: int) -> None:
    """Header-only validation in the callback: a malformed message never displaces a frame."""
    if isinstance(msg, UnreadableImage):
        raise msg.error
    if isinstance(msg, CompressedImage):
        check_compressed(msg, max_pixels)
    else:
        check_image(msg, max_pixels)


def decode(msg, max_pixels: int) -> DecodedImage:
    """The pixels of a checked message."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg, max_pixels)
    return decode_image(msg, max_pixels)
