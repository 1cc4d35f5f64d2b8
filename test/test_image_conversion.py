"""Image conversion: every encoding with row padding, cross-checked against rosbags-image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from image_msgs import image_from_rgb
from rosbags.image import message_to_cvimage
from sensor_msgs.msg import CompressedImage, Image

from jetson_seg.image_conversion import (SUPPORTED_ENCODINGS, ImageRejected, decode_compressed,
                                         decode_image, resize_to_rgb, to_rgb)

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sizes catch stride mistakes


def _raw(pixels: np.ndarray, encoding: str, pad: int, bigendian: bool = False) -> Image:
    h, w = pixels.shape[:2]
    row = pixels.reshape(h, -1)
    if row.dtype == np.uint16:
        row = row.astype('>u2' if bigendian else '<u2').view(np.uint8).reshape(h, -1)
    padded = np.full((h, row.shape[1] + pad), 0xAB, np.uint8)
    padded[:, :row.shape[1]] = row
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian),
                step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


def _source_pixels(encoding: str) -> np.ndarray:
    if encoding in ('rgb8',):
        return RGB
    if encoding in ('bgr8', '8UC3'):
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR)
    if encoding == 'rgba8':
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2RGBA)
    if encoding in ('bgra8', '8UC4'):
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2BGRA)
    if encoding in ('mono8', '8UC1'):
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)[..., None]
    return RNG.integers(0, 65536, (37, 53, 1), dtype=np.uint16)


@pytest.mark.parametrize('pad', [0, 5, 64])
@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_every_encoding_with_padding_matches_rosbags_image(encoding, pad):
    source = _source_pixels(encoding)
    msg = _raw(source, encoding, pad)
    decoded = decode_image(msg)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape == source.shape
    expected = (source >> 8).astype(np.uint8) if source.dtype == np.uint16 else source
    np.testing.assert_array_equal(decoded.pixels, expected)
    # Independent decoder; rosbags-image ignores `step`, so it reads the unpadded twin.
    reference = message_to_cvimage(_raw(source, encoding, 0))
    if source.dtype == np.uint16:
        reference = (reference >> 8).astype(np.uint8)
    np.testing.assert_array_equal(decoded.pixels.reshape(reference.shape), reference)


def test_big_endian_mono16():
    source = RNG.integers(0, 65536, (9, 7, 1), dtype=np.uint16)
    decoded = decode_image(_raw(source, 'mono16', 2, bigendian=True))
    np.testing.assert_array_equal(decoded.pixels, (source >> 8).astype(np.uint8))


@pytest.mark.parametrize('pad', [0, 7])
def test_eight_bit_decoding_is_a_view_of_the_message_buffer(pad):
    msg = _raw(RGB, 'rgb8', pad)
    backing = bytearray(msg.data)
    msg.data = backing
    buffer = np.frombuffer(msg.data, np.uint8)
    decoded = decode_image(msg)
    assert np.shares_memory(decoded.pixels, buffer)
    assert to_rgb(decoded) is decoded.pixels  # no colour conversion, no copy


@pytest.mark.parametrize('fmt,flag', [('jpeg', cv2.IMREAD_COLOR), ('png', cv2.IMREAD_COLOR)])
def test_compressed_colour_round_trip(fmt, flag):
    ok, buf = cv2.imencode('.' + fmt, cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    assert ok
    decoded = decode_compressed(CompressedImage(format=f'bgr8; {fmt} compressed bgr8',
                                                data=buf.tobytes()))
    assert decoded.order == 'bgr'
    diff = np.abs(to_rgb(decoded).astype(int) - RGB.astype(int))
    if fmt == 'png':
        assert diff.max() == 0
    else:
        smooth = cv2.GaussianBlur(RGB, (0, 0), 3)  # jpeg is lossy on noise; check a smooth one
        ok, buf = cv2.imencode('.jpg', cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR))
        again = to_rgb(decode_compressed(CompressedImage(format='jpeg', data=buf.tobytes())))
        assert np.abs(again.astype(int) - smooth.astype(int)).mean() < 3


def test_compressed_mono_and_rgba_png():
    gray = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    ok, buf = cv2.imencode('.png', gray)
    decoded = decode_compressed(CompressedImage(format='png', data=buf.tobytes()))
    assert decoded.order == 'mono'
    np.testing.assert_array_equal(decoded.pixels[..., 0], gray)
    bgra = cv2.cvtColor(RGB, cv2.COLOR_RGB2BGRA)
    ok, buf = cv2.imencode('.png', bgra)
    decoded = decode_compressed(CompressedImage(format='png', data=buf.tobytes()))
    assert decoded.order == 'bgra'
    np.testing.assert_array_equal(to_rgb(decoded), RGB)


def _rejected(fn, msg, **kwargs) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        fn(msg, **kwargs)
    return info.value


def test_rejections_say_what_is_wrong():
    good = image_from_rgb(RGB, 'rgb8')
    truncated = image_from_rgb(RGB, 'rgb8')
    truncated.data = bytes(good.data)[:100]
    exc = _rejected(decode_image, truncated)
    assert exc.reason == 'truncated' and '100 bytes' in str(exc)

    short_step = image_from_rgb(RGB, 'rgb8')
    short_step.step = 53 * 3 - 1
    exc = _rejected(decode_image, short_step)
    assert exc.reason == 'bad_step' and str(53 * 3 - 1) in str(exc)

    zero = Image(height=0, width=10, encoding='rgb8', step=30)
    assert _rejected(decode_image, zero).reason == 'zero_size'

    unknown = image_from_rgb(RGB, 'rgb8')
    unknown.encoding = 'yuv422'
    exc = _rejected(decode_image, unknown)
    assert exc.reason == 'unsupported_encoding' and 'yuv422' in str(exc)


def test_absurd_size_is_rejected_before_touching_data():
    huge = Image(height=100_000, width=100_000, encoding='rgb8', step=300_000)
    huge.data = b'\x00' * 10  # far too short: the size check must fire first
    exc = _rejected(decode_image, huge, max_pixels=4096 * 4096)
    assert exc.reason == 'too_large' and 'max_image_pixels' in str(exc)


def test_corrupt_and_unknown_compressed_data():
    ok, buf = cv2.imencode('.jpg', RGB)
    broken = CompressedImage(format='jpeg', data=buf.tobytes()[:20])
    assert _rejected(decode_compressed, broken).reason == 'corrupt_compressed'
    not_png = CompressedImage(format='png', data=b'\x00' * 64)
    assert _rejected(decode_compressed, not_png).reason == 'corrupt_compressed'
    ok, png = cv2.imencode('.png', RGB)
    big_png = bytearray(png.tobytes())
    big_png[16:24] = (100_000).to_bytes(4, 'big') + (100_000).to_bytes(4, 'big')
    exc = _rejected(decode_compressed, CompressedImage(format='png', data=bytes(big_png)))
    assert exc.reason == 'too_large'
    exc = _rejected(decode_compressed, CompressedImage(format='tiff', data=b'abc'))
    assert exc.reason == 'unsupported_format' and 'tiff' in str(exc)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'mono8', 'bgra8'])
def test_resize_to_rgb_matches_opencv_on_the_rgb_image(encoding):
    msg = image_from_rgb(RGB, encoding, pad=3)
    decoded = decode_image(msg)
    small = resize_to_rgb(decoded, 20, 14)
    reference_rgb = to_rgb(decoded)
    expected = cv2.resize(np.ascontiguousarray(reference_rgb), (20, 14),
                          interpolation=cv2.INTER_AREA)
    assert small.shape == (14, 20, 3)
    assert np.abs(small.astype(int) - expected.astype(int)).max() <= 1
    same = resize_to_rgb(decoded, 53, 37)
    np.testing.assert_array_equal(same, reference_rgb)
