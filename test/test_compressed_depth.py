"""compressedDepth messages (image_transport's plugin format) read back to depth images.

The messages are built by image_msgs.compressed_depth from the plugin's published format (a
12-byte header, then a 16-bit PNG or RVL; its RVL encoder follows Wilson's description, written
independently of the decoder it checks).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from image_msgs import compressed_depth, rvl

from jetson_seg.vision import compressed_depth as decoder
from jetson_seg.vision.compressed_depth import decode_compressed_depth, decode_rvl
from jetson_seg.vision.image_conversion import ImageRejected

RNG = np.random.default_rng(117)


def _scene(height: int = 48, width: int = 64) -> np.ndarray:
    metres = RNG.uniform(0.3, 6.0, (height, width)).astype(np.float32)
    metres[10:20, 5:40] = np.nan  # a hole, then scattered pixels without a reading
    metres[RNG.random(metres.shape) < 0.05] = np.nan
    return metres


@pytest.mark.parametrize('codec', ['png', 'rvl'])
def test_16uc1_reads_back_the_millimetres_and_its_holes(codec):
    metres = _scene()
    depth = decode_compressed_depth(compressed_depth(metres, '16UC1', codec))
    assert depth.values.dtype == np.uint16 and depth.scale == 0.001
    np.testing.assert_array_equal(depth.values, np.where(np.isnan(metres), 0,
                                                         np.round(metres * 1000)))


@pytest.mark.parametrize('codec', ['png', 'rvl'])
def test_32fc1_reads_back_metres_within_the_inverse_quantization(codec):
    metres = _scene()
    depth = decode_compressed_depth(compressed_depth(metres, '32FC1', codec))
    got = depth.metres(depth.values)
    assert np.array_equal(np.isnan(got), np.isnan(metres))
    # q = A / z + B truncated: one step of q is z^2 / A (A = 10100): 3.6 mm at 6 m
    read = ~np.isnan(metres)
    assert np.all(np.abs(got[read] - metres[read]) <= metres[read] ** 2 / 10100 + 1e-5)


def test_older_format_strings_are_png_and_far_depth_is_no_reading():
    metres = _scene()
    metres[0, :] = 12.0  # beyond the publisher's depth_max: written as no reading
    for fmt in ('32FC1', '32FC1; compressedDepth'):
        depth = decode_compressed_depth(compressed_depth(metres, '32FC1', fmt=fmt))
        assert np.isnan(depth.values[0]).all() and np.isfinite(depth.values[30, 50])


def test_rvl_decodes_long_runs_large_jumps_and_an_image_without_readings():
    image = np.zeros((40, 50), np.uint16)
    image[3, :] = 65535
    image[4, 7:9] = (1, 65535)  # deltas both ways across the whole range
    image[10:, 10:] = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 50
    packed = np.frombuffer(rvl(image), np.uint8)
    np.testing.assert_array_equal(decode_rvl(packed[8:], 50, 40), image)
    empty = np.zeros((5, 6), np.uint16)
    np.testing.assert_array_equal(decode_rvl(np.frombuffer(rvl(empty), np.uint8)[8:], 6, 5),
                                  empty)


@pytest.mark.parametrize('fmt, data, reason', [
    ('16UC1; compressedDepth jpeg', None, 'unsupported_format'),
    ('mono8; compressedDepth png', None, 'unsupported_depth_encoding'),
    ('16UC1; compressedDepth png', b'\0' * 12, 'truncated'),
    ('16UC1; compressedDepth png', struct.pack('<iff', 1, 0, 0) + b'x' * 40,
     'corrupt_compressed'),
    ('16UC1; compressedDepth png', struct.pack('<iff', 0, 0, 0) + b'not a png at all' * 3,
     'corrupt_compressed'),
    ('16UC1; compressedDepth rvl', struct.pack('<iffII', 0, 0, 0, 100000, 100000),
     'too_large'),
    ('16UC1; compressedDepth rvl', struct.pack('<iffII', 0, 0, 0, 64, 48) + b'\0' * 4,
     'truncated'),
    ('32FC1; compressedDepth png', struct.pack('<iff', 0, 0, 0) + b'\x89PNG' + b'\0' * 40,
     'corrupt_compressed'),
])
def test_malformed_compressed_depth_is_rejected_with_its_reason(fmt, data, reason):
    msg = compressed_depth(_scene(), '16UC1')
    msg.format = fmt
    if data is not None:
        msg.data = data
    with pytest.raises(ImageRejected) as caught:
        decode_compressed_depth(msg, max_pixels=640 * 480)
    assert caught.value.reason == reason, caught.value


def test_a_cut_rvl_stream_is_rejected_not_read_past():
    msg = compressed_depth(_scene(), '16UC1', 'rvl')
    msg.data = msg.data[:len(msg.data) // 2]
    with pytest.raises(ImageRejected, match='RVL'):
        decode_compressed_depth(msg)


def _reference_rvl(data: bytes, width: int, height: int) -> np.ndarray | str:
    """RVL decoded one nibble and one pixel at a time, as the format reads; a rejection's reason.

    The semantics the vectorized decoder keeps: the whole stream's values are read first (one
    longer than 11 nibbles is corrupt; trailing continuation nibbles are no value), then runs
    are taken until the image is full, never past the values.
    """
    words = struct.unpack(f'<{len(data) // 4}I', data[:len(data) // 4 * 4])
    values, value, place = [], 0, 0
    for nibble in (word >> shift & 15 for word in words for shift in range(28, -4, -4)):
        value, place = value | (nibble & 7) << 3 * place, place + 1
        if nibble < 8:
            if place > 11:
                return 'corrupt_compressed'
            values.append(value)
            value = place = 0
    out: list[int] = []
    at = previous = 0
    while len(out) < width * height:
        if at + 2 > len(values):
            return 'truncated'
        zeros, count = values[at:at + 2]
        if len(out) + zeros + count > width * height or at + 2 + count > len(values):
            return 'corrupt_compressed'
        out += [0] * zeros
        for zigzag in values[at + 2:at + 2 + count]:
            previous = (previous + ((zigzag >> 1) ^ -(zigzag & 1))) & 0xFFFF
            out.append(previous)
        at += 2 + count
    return np.array(out, np.uint16).reshape(height, width)


def _decoded(data: bytes, width: int, height: int) -> np.ndarray | str:
    try:
        return decode_rvl(np.frombuffer(data, np.uint8), width, height)
    except ImageRejected as rejected:
        return rejected.reason


def _packed(nibbles: list[int]) -> bytes:
    """Nibbles eight to a little-endian 32-bit word, most significant first (0-padded)."""
    nibbles = nibbles + [0] * (-len(nibbles) % 8)
    return np.array([int(''.join(f'{n:x}' for n in nibbles[k:k + 8]), 16)
                     for k in range(0, len(nibbles), 8)], '<u4').tobytes()


def _nibbles(value: int) -> list[int]:
    """One value as RVL writes it: 3-bit groups, least significant first, 8 = more follow."""
    groups = [value >> shift & 7 for shift in range(0, max(value.bit_length(), 1), 3)]
    return [group | 8 for group in groups[:-1]] + groups[-1:]


@pytest.mark.parametrize('chunk', [16, decoder._CHUNK])
def test_rvl_matches_a_nibble_by_nibble_decoder_on_cut_altered_and_random_streams(chunk,
                                                                                  monkeypatch):
    monkeypatch.setattr(decoder, '_CHUNK', chunk)  # 16: values across chunk ends
    rng = np.random.default_rng(2026)
    outcomes = set()
    for case in range(400):
        height, width = (int(n) for n in rng.integers(1, 13, 2))
        image = rng.integers(0, 65536, (height, width)).astype(np.uint16)
        image[rng.random(image.shape) < rng.random()] = 0
        data = bytearray(rvl(image)[8:])
        if case % 4 == 1:
            for at in rng.integers(0, len(data), int(rng.integers(1, 4))):
                data[at] = int(rng.integers(256))
        elif case % 4 == 2:
            data = data[:int(rng.integers(0, len(data) + 1))]
        elif case % 4 == 3:
            data = bytearray(rng.integers(0, 256, int(rng.integers(0, 48)), np.uint8).tobytes())
        want, got = _reference_rvl(bytes(data), width, height), _decoded(bytes(data), width,
                                                                         height)
        if case % 4 == 0:
            np.testing.assert_array_equal(want, image)
        if isinstance(want, str):
            assert got == want, (case, bytes(data).hex())
        else:
            np.testing.assert_array_equal(got, want, err_msg=bytes(data).hex())
        outcomes.add(want if isinstance(want, str) else 'decoded')
    assert outcomes == {'decoded', 'truncated', 'corrupt_compressed'}


def test_rvl_frame_over_several_chunks_matches_the_nibble_by_nibble_decoder():
    image = np.round(np.nan_to_num(_scene(120, 160), nan=0) * 1000).astype(np.uint16)
    data = rvl(image)[8:]
    assert len(data) * 2 > 2 * decoder._CHUNK  # several chunks, values across ends
    np.testing.assert_array_equal(_decoded(data, 160, 120), _reference_rvl(data, 160, 120))
    np.testing.assert_array_equal(_decoded(data, 160, 120), image)


def test_rvl_edges_runs_of_no_pixels_the_data_end_and_long_values():
    # 2 zeros, an empty non-zero run, 1 zero, then 1 non-zero (delta +3: 6): eight nibbles,
    # the image's last value at the data's last nibble (no padding)
    exact = _packed(_nibbles(2) + _nibbles(0) + _nibbles(1) + _nibbles(1) + _nibbles(6)
                    + [0, 0, 0])
    assert len(exact) == 4
    np.testing.assert_array_equal(_decoded(exact, 4, 1), [[0, 0, 0, 3]])
    assert _decoded(exact[:-1], 4, 1) == 'truncated'  # no whole word: no values
    # 11 nibbles hold up to 33 bits: 2^32 + 2 zeros must overrun, not wrap around to 2
    huge = _packed(_nibbles(2 ** 32 + 2) + _nibbles(1) + _nibbles(6))
    assert len(_nibbles(2 ** 32 + 2)) == 11 and _decoded(huge, 3, 1) == 'corrupt_compressed'
    # the same 2 zeros spelled in 11 nibbles (continuation groups of 0) read as 2
    padded = _packed([10] + [8] * 9 + [0] + _nibbles(1) + _nibbles(6))
    np.testing.assert_array_equal(_decoded(padded, 3, 1), [[0, 0, 3]])
    assert _decoded(_packed([10] + [8] * 10 + [0] + _nibbles(1) + _nibbles(6)), 3,
                    1) == 'corrupt_compressed'  # 12 nibbles
    # a run whose count chains past the values: 1 non-zero announced, 5 more claimed after it
    chained = _packed(_nibbles(0) + _nibbles(1) + _nibbles(6) + _nibbles(0) + _nibbles(5)
                      + _nibbles(2))
    assert _reference_rvl(chained, 6, 1) == _decoded(chained, 6, 1) == 'corrupt_compressed'
    # continuation nibbles after the image are no value, as in the reference
    trailing = _packed(_nibbles(0) + _nibbles(1) + _nibbles(6) + [8] * 13)
    np.testing.assert_array_equal(_decoded(trailing, 1, 1), [[3]])
    np.testing.assert_array_equal(_reference_rvl(trailing, 1, 1), [[3]])
