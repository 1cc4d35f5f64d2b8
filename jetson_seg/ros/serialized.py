"""Images as the CDR bytes DDS carries: the node reads its input and writes its outputs directly.

rclpy turns a message into bytes (and back) through a C struct and a Python object: a 640x480
rgb8 image is copied into an array.array, the struct and the CDR buffer on the way out, and
the same on the way in, with the interpreter lock held. Here an outgoing image is written as
one stream (its pixels copied once) and an incoming one is read in place: `ReceivedImage.data`
is a view of the bytes the subscription delivered. CDR offsets align from the end of the 4-byte
encapsulation header; its second byte gives the byte order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
from std_msgs.msg import Header

from jetson_seg.vision.image_conversion import ImageRejected, packed_rows

#: Encapsulation of a serialized message: plain CDR, little endian (what rmw_fastrtps writes).
CDR_LE = b'\x00\x01\x00\x00'
#: Encapsulations read here: plain CDR and plain XCDR2, either byte order. An Image has no 8-byte
#: field, so both lay it out alike; parameter-list and delimited forms are refused.
PLAIN_ENCAPSULATIONS = (0x0000, 0x0001, 0x0006, 0x0007)


def _byte_order(data: bytes) -> str:
    """struct's byte order of a serialized message: the encapsulation's low bit says LE."""
    return '<' if data[1] & 1 else '>'


def stamp_key_of(data: bytes) -> int:
    """The header stamp (as interface.stamp_key) of a serialized message that starts with one.

    Every output and input of the node does: a monitor can time messages it never decodes.
    """
    sec, nanosec = struct.unpack_from(_byte_order(data) + 'iI', data, 4)
    return sec * 1_000_000_000 + nanosec


def _cdr_string(text: str) -> bytes:
    """A CDR string: uint32 length counting the terminating NUL, then the bytes and the NUL."""
    data = text.encode() + b'\0'
    return struct.pack('<I', len(data)) + data


def _align4(stream: bytearray) -> None:
    stream += bytes(-len(stream) % 4)


def serialized_image(header, pixels: np.ndarray, encoding: str) -> bytes:
    """A sensor_msgs/Image of `pixels` ('mono8' HxW or 'rgb8' HxWx3) as CDR bytes to publish.

    A paced 640x480 rgb8 stream measured 0.16 ms to build this against 0.29 ms for an Image
    object plus rclpy's serialization, and the same 0.45 ms inside Fast DDS either way.
    """
    rows, step = packed_rows(pixels, encoding)
    stream = bytearray(struct.pack('<iI', header.stamp.sec, header.stamp.nanosec))
    stream += _cdr_string(header.frame_id)
    _align4(stream)
    stream += struct.pack('<II', rows.shape[0], rows.shape[1]) + _cdr_string(encoding)
    stream += b'\0'  # is_bigendian
    _align4(stream)
    stream += struct.pack('<II', step, rows.nbytes)
    return b''.join((CDR_LE, stream, rows.data))


class _Reader:
    """Sequential CDR reads with alignment; running past the end raises ImageRejected."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 4:
            raise ImageRejected('malformed', f'a serialized Image of {len(data)} bytes')
        kind = int.from_bytes(data[:2], 'big')
        if kind not in PLAIN_ENCAPSULATIONS:
            raise ImageRejected('malformed', f'CDR encapsulation 0x{kind:04x} is not plain CDR')
        self.data = memoryview(data)
        self.order = _byte_order(data)
        self.pos = 4

    def _take(self, size: int, align: int = 1) -> memoryview:
        self.pos += -(self.pos - 4) % align
        end = self.pos + size
        if end > len(self.data):
            raise ImageRejected('malformed', f'serialized Image ends at byte {len(self.data)}, '
                                             f'a field needs bytes up to {end}')
        chunk, self.pos = self.data[self.pos:end], end
        return chunk

    def uint32(self) -> int:
        return struct.unpack(self.order + 'I', self._take(4, 4))[0]

    def int32(self) -> int:
        return struct.unpack(self.order + 'i', self._take(4, 4))[0]

    def uint8(self) -> int:
        return self._take(1)[0]

    def string(self) -> str:
        raw = bytes(self._take(self.uint32()))
        try:
            return raw.rstrip(b'\0').decode()
        except UnicodeDecodeError as exc:
            raise ImageRejected('malformed', f'a string field is not UTF-8: {exc}') from exc

    def octets(self) -> memoryview:
        return self._take(self.uint32())


@dataclass(frozen=True)
class ReceivedImage:
    """A sensor_msgs/Image read from its CDR bytes; `data` is a view of them, not a copy.

    Has the fields check_image/decode_image read, and a real Header for the outputs.
    """

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview = field(repr=False)


def received_image(data: bytes) -> ReceivedImage:
    """Read a serialized sensor_msgs/Image; ImageRejected('malformed') if the bytes are cut."""
    read = _Reader(data)
    header = Header()
    header.stamp.sec, header.stamp.nanosec = read.int32(), read.uint32()
    header.frame_id = read.string()
    height, width = read.uint32(), read.uint32()
    encoding = read.string()
    is_bigendian = read.uint8()
    step = read.uint32()
    return ReceivedImage(header, height, width, encoding, is_bigendian, step, read.octets())


@dataclass(frozen=True)
class UnreadableImage:
    """Bytes that could not be read as an Image: the node's check rejects it with `error`."""

    error: ImageRejected
    header: Header = field(default_factory=Header)
