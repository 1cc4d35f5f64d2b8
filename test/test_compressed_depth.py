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
