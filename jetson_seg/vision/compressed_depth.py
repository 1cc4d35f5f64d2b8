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


_CHUNK = 1 << 15  # nibbles decoded at a time: temporaries stay small, in cache and reused


def _vle_values(words: np.ndarray) -> np.ndarray:
    """Every variable-length value of RVL's nibble stream, in order (uint32, or int64 if long).

    Decoded in chunks of whole values: a frame's temporaries at once (~10 MB) cost more in
    fresh pages (page faults) than in arithmetic, while a chunk's are reused from the heap.
    """
    octets = words.astype('>u4').view(np.uint8)  # most significant first
    nibbles = np.empty(octets.size * 2, np.uint8)
    np.right_shift(octets, 4, out=nibbles[0::2])
    np.bitwise_and(octets, 0xF, out=nibbles[1::2])
    chunks = []
    begin = 0
    while begin < nibbles.size:
        ends = np.flatnonzero(nibbles[begin:begin + _CHUNK] < 8)  # nibbles without continuation
        if ends.size == 0:  # none ends here: the stream's padding, or a value far too long
            if (nibbles[begin:] < 8).any():
                raise ImageRejected('corrupt_compressed', 'RVL value longer than 33 bits')
            break
        chunks.append(_whole_values(nibbles[begin:begin + ends[-1] + 1], ends))
        begin += int(ends[-1]) + 1
    if not chunks:
        return np.zeros(0, np.uint32)
    return np.concatenate(chunks, dtype=np.result_type(*chunks))


def _whole_values(nibbles: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The values of nibbles that end with a whole value, whose last nibbles are at `ends`.

    A nibble's place in its value is counted in uint8 by ANDing the continuation bits of the
    nibbles before it, one pass per nibble of the longest value (2-5 in a depth frame); one
    cumulative sum of the shifted 3-bit groups is then read at each value's last nibble. uint32
    holds values of up to 10 nibbles exactly.
    """
    going = nibbles >= 8
    place = np.zeros(nibbles.size, np.uint8)  # nibbles before this one in its value
    after = going[:-1].copy()  # after[j]: nibble j + longest follows `longest` continuing ones
    longest = 1  # nibbles of the longest value
    while after.any():
        if longest == 11:  # a run is < 2^24 pixels, a zig-zag delta < 2^17: 8 and 6 nibbles
            raise ImageRejected('corrupt_compressed', 'RVL value longer than 33 bits')
        place[longest:] += after.view(np.uint8)  # bool as 0/1 bytes: no casting loop
        after = np.logical_and(after[:-1], going[longest:-1], out=after[:-1])
        longest += 1
    sums = np.bitwise_and(nibbles, 7, dtype=np.uint32 if longest <= 10 else np.int64)
    place *= 3
    np.left_shift(sums, place, out=sums)
    np.cumsum(sums, dtype=sums.dtype, out=sums)  # (not widened to 64 bits and back)
    values = sums[ends]
    values[1:] -= values[:-1].copy()  # wraps around in uint32, exactly as the values fit
    return values


def decode_rvl(data: np.ndarray, width: int, height: int) -> np.ndarray:
    """A uint16 (height, width) image from RVL data (after its width and height).

    The value stream is decoded at once; only the run headers are walked in Python (one step
    per pair of zero and non-zero runs, indexing the values in place: a few thousand in a depth
    frame with holes). The deltas and their pixels are then found by masks, and summed in
    uint16, which wraps around as the encoder's 16-bit arithmetic does.
    """
    total = width * height
    values = _vle_values(data[:data.size // 4 * 4].view('<u4'))
    stream = memoryview(values)  # plain ints one at a time, without converting the stream
    heads: list[int] = []  # where each pair of runs starts in the stream
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
        heads.append(at)
        done += count
        at += 2 + count
    starts = np.array(heads, np.int64)
    counts = values[starts + 1].astype(np.int64)
    after = np.cumsum(values[starts] + counts)  # pixels up to the end of each non-zero run
    edges = np.zeros(total + 1, np.int8)  # +1 where a run of non-zeros starts, -1 after it
    np.add.at(edges, after - counts, 1)
    np.add.at(edges, after, -1)
    deltas = np.ones(at, bool)
    deltas[starts], deltas[starts + 1] = False, False
    zigzag = values[:at][deltas]
    steps, odd = np.empty((2, zigzag.size), np.uint16)  # kept modulo 2^16, as the image wraps
    np.right_shift(zigzag, 1, out=steps, casting='unsafe')
    np.bitwise_and(zigzag, 1, out=odd, casting='unsafe')
    steps ^= np.negative(odd, out=odd)  # zig-zag: odd values are negative deltas
    out = np.zeros(total, np.uint16)
    out[np.cumsum(edges[:-1], dtype=np.int8).view(bool)] = np.cumsum(steps, out=steps)
    return out.reshape(height, width)
