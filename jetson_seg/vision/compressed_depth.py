"""Depth images as image_transport's `compressedDepth` plugin sends them, read without ROS.

Bags of RGB-D cameras often hold `.../compressedDepth` instead of the raw depth image (a 640x480
16UC1 frame is 600 KB raw, tens of KB so). The message is a sensor_msgs/CompressedImage whose
`format` is '<encoding>; compressedDepth <png|rvl>' (older publishers: '<encoding>' or
'<encoding>; compressedDepth', both png), and whose data is a 12-byte header (int32 0, then
the float32 quantization parameters A and B, little-endian) followed by the image:
- 16UC1: the millimetres themselves, 0 = no reading (REP 117);
- 32FC1: inverse depth quantized into uint16, q = A / z + B, read back as z = A / (q - B),
  q = 0 = no reading (also what the publisher writes beyond its depth_max).
The image is a 16-bit greyscale PNG, or RVL (a 4-byte width, a 4-byte height, then run
lengths of zeros and non-zeros and zig-zag deltas of the non-zeros, each in 3-bit groups with a
continuation bit, eight to a 32-bit word, most significant first: Wilson, "Fast lossless depth
image compression", 2017). Sizes are checked against the limit before anything is decoded.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from jetson_seg.vision.image_conversion import (DepthImage, ImageRejected, byte_view, check_size,
                                                png_size)

_HEADER = struct.Struct('<iff')  # format (0: inverse depth), quantization A, B
_SCALE = {'16UC1': 0.001, '32FC1': 1.0}  # metres per decoded unit


def _format(fmt: str) -> tuple[str, str]:
    """(encoding, 'png' or 'rvl') from a compressedDepth format string."""
    encoding, _, rest = fmt.partition(';')
    encoding, words = encoding.strip(), rest.split()
    if encoding not in _SCALE:
        raise ImageRejected('unsupported_depth_encoding',
                            f'compressedDepth of {encoding!r}: neither 16UC1 nor 32FC1')
    if words in ([], ['compressedDepth'], ['compressedDepth', 'png']):
        return encoding, 'png'
    if words == ['compressedDepth', 'rvl']:
        return encoding, 'rvl'
    raise ImageRejected('unsupported_format', f'depth format {fmt!r} is not compressedDepth '
                                              f'png or rvl')


def check_compressed_depth(msg, max_pixels: int = 4096 * 4096
                           ) -> tuple[str, str, float, float, np.ndarray]:
    """Validate from the format and headers, without decoding: (encoding, codec, A, B, image).

    The image's size (PNG IHDR or RVL header) is checked against `max_pixels`, so a small
    message declaring a huge image is rejected before anything is allocated.
    """
    encoding, codec = _format(msg.format)
    data = byte_view(msg.data)
    if data.size <= _HEADER.size:
        raise ImageRejected('truncated', f'compressedDepth data of {data.size} bytes has no '
                                         f'image after its {_HEADER.size}-byte header')
    kind, quant_a, quant_b = _HEADER.unpack_from(data)
    if kind != 0:
        raise ImageRejected('corrupt_compressed', f'compressedDepth header format {kind}, not 0')
    image = data[_HEADER.size:]
    if codec == 'png':
        width, height = png_size(memoryview(image))
    else:
        if image.size < 8:
            raise ImageRejected('truncated', 'RVL data has no width and height')
        width, height = (int(v) for v in image[:8].view('<u4'))
    check_size(width, height, max_pixels)
    if encoding == '32FC1' and not (np.isfinite(quant_a) and np.isfinite(quant_b) and quant_a):
        raise ImageRejected('corrupt_compressed', f'32FC1 quantization A={quant_a}, B={quant_b}')
    return encoding, codec, quant_a, quant_b, image


def decode_compressed_depth(msg, max_pixels: int = 4096 * 4096) -> DepthImage:
    """The depth image of a compressedDepth message: 16UC1 millimetres or 32FC1 metres."""
    encoding, codec, quant_a, quant_b, image = check_compressed_depth(msg, max_pixels)
    if codec == 'png':
        values = cv2.imdecode(image, cv2.IMREAD_UNCHANGED)
        if values is None or values.ndim != 2 or values.dtype != np.uint16:
            raise ImageRejected('corrupt_compressed', f'compressedDepth png ({image.size} bytes)'
                                                      f' is not one 16-bit grey image')
    else:
        width, height = (int(v) for v in image[:8].view('<u4'))
        values = decode_rvl(image[8:], width, height)
    if encoding == '16UC1':
        return DepthImage(values, _SCALE[encoding])
    metres = np.full(values.shape, np.nan, np.float32)
    read = values != 0
    metres[read] = quant_a / (values[read].astype(np.float32) - np.float32(quant_b))
    return DepthImage(metres, _SCALE[encoding])


def _vle_values(words: np.ndarray) -> np.ndarray:
    """Every variable-length value of RVL's nibble stream, in order (int64)."""
    octets = words.astype('<u4').view(np.uint8).reshape(-1, 4)[:, ::-1]  # most significant first
    nibbles = np.stack([octets >> 4, octets & 0xF], -1).ravel()
    ends = np.flatnonzero(nibbles < 8)  # a value ends at a nibble without the continuation bit
    if ends.size == 0:
        return np.zeros(0, np.int64)
    lengths = np.diff(ends, prepend=-1)
    if lengths.max() > 11:  # a run is < 2^24 pixels, a zig-zag delta < 2^17: 8 and 6 nibbles
        raise ImageRejected('corrupt_compressed', 'RVL value longer than 33 bits')
    nibbles = nibbles[:ends[-1] + 1]
    place = np.arange(len(nibbles)) - np.repeat(ends - lengths + 1, lengths)
    sums = np.cumsum((nibbles & 7).astype(np.int64) << (3 * place))
    return np.diff(sums[ends], prepend=0)


def decode_rvl(data: np.ndarray, width: int, height: int) -> np.ndarray:
    """A uint16 (height, width) image from RVL data (after its width and height).

    The value stream is decoded at once; only the run headers are walked in Python (one step
    per run of zeros and non-zeros, over plain ints: a few thousand in a depth frame with
    holes), then the non-zero values are placed with one cumulative sum.
    """
    total = width * height
    values = _vle_values(data[:data.size // 4 * 4].view('<u4'))
    stream = values.tolist()
    runs: list[tuple[int, int, int]] = []  # (first pixel, pixels, first value) of each run
    done = at = 0
    size = len(stream)
    while done < total:
        if at + 2 > size:
            raise ImageRejected('truncated', f'RVL data ends after {done} of {total} pixels')
        done += stream[at]
        count = stream[at + 1]
        if done + count > total or at + 2 + count > size:
            raise ImageRejected('corrupt_compressed', f'RVL run of {count} pixels overruns '
                                                      f'{total} pixels or its data')
        if count:
            runs.append((done, count, at + 2))
        done += count
        at += 2 + count
    out = np.zeros(total, np.uint16)
    if runs:
        first, counts, offsets = (np.array(column, np.int64) for column in zip(*runs))
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        zigzag = values[np.repeat(offsets, counts) + within]
        steps = (zigzag >> 1) ^ -(zigzag & 1)
        out[np.repeat(first, counts) + within] = (np.cumsum(steps) & 0xFFFF).astype(np.uint16)
    return out.reshape(height, width)
