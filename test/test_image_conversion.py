"""Image conversion: every encoding with row padding, cross-checked against rosbags-image."""

from __future__ import annotations

import array
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.image import message_to_cvimage
from image_msgs import bayer_from_rgb, yuv422_from_rgb
from sensor_msgs.msg import CompressedImage, Image

from jetson_seg.vision.image_conversion import (DIRECT_ENCODINGS, DecodedImage, ImageRejected,
                                                check_image, decode_compressed, decode_image,
                                                packed_rows, resize, resize_to_rgb,
                                                to_rgb)

RNG = np.random.default_rng(3)
H, W = 37, 53  # odd sizes catch stride and channel mistakes
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
SMOOTH = cv2.GaussianBlur(RGB, (0, 0), 3)  # jpeg is lossy on noise: compare a smooth image
PAD_BYTE = 0xAB
EIGHT_BIT = tuple(e for e in DIRECT_ENCODINGS if e not in ('mono16', '16UC1'))
ORDER = {'rgb8': 'rgb', 'bgr8': 'bgr', 'rgba8': 'rgba', 'bgra8': 'bgra', 'mono8': 'mono',
         'mono16': 'mono', '8UC1': 'mono', '8UC3': 'bgr', '8UC4': 'bgra', '16UC1': 'mono'}


def _source_pixels(encoding: str, rgb: np.ndarray = RGB) -> np.ndarray:
    """HxWxC array in the encoding's own channel order (uint16 for 16-bit encodings)."""
    if encoding == 'rgb8':
        return rgb
    if encoding in ('bgr8', '8UC3'):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if encoding == 'rgba8':
        rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
        rgba[..., 3] = rgb[..., 0] ^ 0x5A  # a non-constant alpha, so channel mix-ups show
        return rgba
    if encoding in ('bgra8', '8UC4'):
        bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
        bgra[..., 3] = rgb[..., 1] ^ 0x5A
        return bgra
    if encoding in ('mono8', '8UC1'):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
    return RNG.integers(0, 65536, rgb.shape[:2] + (1,), dtype=np.uint16)


def _rows(pixels: np.ndarray, pad: int, bigendian: bool = False) -> np.ndarray:
    """HxStep uint8 rows as a camera driver lays them out, padding filled with PAD_BYTE."""
    h = pixels.shape[0]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype('>u2' if bigendian else '<u2').view(np.uint8)
    row = pixels.reshape(h, -1)
    padded = np.full((h, row.shape[1] + pad), PAD_BYTE, np.uint8)
    padded[:, :row.shape[1]] = row
    return padded


def _image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    rows = _rows(pixels, pad, bigendian)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                is_bigendian=int(bigendian), step=rows.shape[1])
    msg.data = rows.tobytes()
    return msg


def _duck(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False):
    """A message-like object whose data is a numpy array we keep a handle on."""
    rows = _rows(pixels, pad, bigendian)
    return SimpleNamespace(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                           is_bigendian=int(bigendian), step=rows.shape[1],
                           data=rows.reshape(-1)), rows


def _expected(encoding: str, source: np.ndarray) -> np.ndarray:
    return (source >> 8).astype(np.uint8) if source.dtype == np.uint16 else source


def _rejected(fn, msg, **kwargs) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        fn(msg, **kwargs)
    assert str(info.value) == f'{info.value.reason}: {info.value.detail}'
    return info.value


# --- raw images ---------------------------------------------------------------------------------

@pytest.mark.parametrize('shape', [(H, W), (1, 1), (2, 3)])
@pytest.mark.parametrize('pad', [0, 5, 64])
@pytest.mark.parametrize('encoding', DIRECT_ENCODINGS)
def test_every_encoding_with_padding_matches_expected_and_rosbags_image(encoding, pad, shape):
    rgb = RGB[:shape[0], :shape[1]]
    source = _source_pixels(encoding, rgb)
    decoded = decode_image(_image(source, encoding, pad))
    assert decoded.order == ORDER[encoding]
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape == source.shape
    np.testing.assert_array_equal(decoded.pixels, _expected(encoding, source))
    # Independent decoder; rosbags-image ignores `step`, so it reads the unpadded twin.
    reference = message_to_cvimage(_image(source, encoding, 0))
    if reference.dtype == np.uint16:
        reference = (reference >> 8).astype(np.uint8)
    np.testing.assert_array_equal(decoded.pixels, reference.reshape(source.shape))
    if encoding in ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'):
        # rosbags' own colour conversion agrees with ours on the way to RGB.
        reference_rgb = message_to_cvimage(_image(source, encoding, 0), 'rgb8')
        np.testing.assert_array_equal(to_rgb(decoded), reference_rgb)


@pytest.mark.parametrize('encoding', ['mono16', '16UC1'])
def test_sixteen_bit_honours_is_bigendian(encoding):
    source = RNG.integers(0, 65536, (9, 7, 1), dtype=np.uint16)
    source[0, 0, 0] = 0x12FE  # high and low byte differ, so a byte-order mix-up cannot pass
    big = _image(source, encoding, 3, bigendian=True)
    decoded = decode_image(big)
    np.testing.assert_array_equal(decoded.pixels, (source >> 8).astype(np.uint8))
    assert decoded.pixels[0, 0, 0] == 0x12
    # rosbags byte-swaps big-endian data itself: same answer.
    reference = message_to_cvimage(_image(source, encoding, 0, bigendian=True))
    np.testing.assert_array_equal(decoded.pixels[..., 0], (reference >> 8).astype(np.uint8))
    # The same bytes read as little-endian give the low bytes instead.
    big.is_bigendian = 0
    np.testing.assert_array_equal(decode_image(big).pixels, (source & 0xFF).astype(np.uint8))


@pytest.mark.parametrize('pad', [0, 7])
def test_rgb8_decoding_is_a_view_of_the_rclpy_message_buffer(pad):
    msg = _image(RGB, 'rgb8', pad)
    decoded = decode_image(msg)
    assert np.shares_memory(decoded.pixels, np.frombuffer(msg.data, np.uint8))
    assert to_rgb(decoded) is decoded.pixels  # no colour conversion, no copy
    np.testing.assert_array_equal(to_rgb(decoded), RGB)


@pytest.mark.parametrize('pad', [0, 7])
@pytest.mark.parametrize('encoding', EIGHT_BIT)
def test_eight_bit_decoding_is_a_view_of_a_numpy_backed_message(encoding, pad):
    msg, rows = _duck(_source_pixels(encoding), encoding, pad)
    decoded = decode_image(msg)
    assert np.shares_memory(decoded.pixels, rows)
    rows[2, 0] ^= 0xFF  # a write to the message buffer shows through: it really is a view
    assert decoded.pixels[2, 0, 0] == _source_pixels(encoding)[2, 0, 0] ^ 0xFF


def test_sixteen_bit_decoding_owns_its_pixels():
    msg, rows = _duck(_source_pixels('mono16'), 'mono16', 4)
    decoded = decode_image(msg)
    assert not np.shares_memory(decoded.pixels, rows)
    assert decoded.pixels.flags.c_contiguous


@pytest.mark.parametrize('wrap', [bytes, bytearray, lambda b: array.array('B', b), memoryview,
                                  lambda b: np.frombuffer(b, np.uint8), list],
                         ids=['bytes', 'bytearray', 'array', 'memoryview', 'numpy', 'list'])
def test_any_buffer_type_decodes(wrap):
    msg, rows = _duck(_source_pixels('bgr8'), 'bgr8', 3)
    msg.data = wrap(rows.tobytes())
    np.testing.assert_array_equal(to_rgb(decode_image(msg)), RGB)


# --- compressed images --------------------------------------------------------------------------

def _compressed(image: np.ndarray, ext: str, fmt: str) -> CompressedImage:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return CompressedImage(format=fmt, data=buf.tobytes())


@pytest.mark.parametrize('fmt', ['jpeg', 'jpg', 'rgb8; jpeg compressed bgr8', 'JPEG'])
def test_jpeg_colour_round_trip(fmt):
    msg = _compressed(cv2.cvtColor(SMOOTH, cv2.COLOR_RGB2BGR), '.jpg', fmt)
    decoded = decode_compressed(msg)
    assert decoded.order == 'bgr' and decoded.pixels.shape == (H, W, 3)
    assert np.abs(to_rgb(decoded).astype(int) - SMOOTH.astype(int)).mean() < 3
    np.testing.assert_array_equal(decoded.pixels, message_to_cvimage(msg))  # same decoder


def test_jpeg_mono_round_trip():
    gray = cv2.cvtColor(SMOOTH, cv2.COLOR_RGB2GRAY)
    decoded = decode_compressed(_compressed(gray, '.jpg', 'mono8; jpeg compressed mono8'))
    assert decoded.order == 'mono' and decoded.pixels.shape == (H, W, 1)
    assert np.abs(decoded.pixels[..., 0].astype(int) - gray.astype(int)).mean() < 3
    np.testing.assert_array_equal(to_rgb(decoded)[..., 1], decoded.pixels[..., 0])


@pytest.mark.parametrize('fmt', ['png', 'bgr8; png compressed', 'rgb8; png compressed bgr8'])
def test_png_colour_round_trip_is_exact(fmt):
    msg = _compressed(cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR), '.png', fmt)
    decoded = decode_compressed(msg)
    assert decoded.order == 'bgr'
    np.testing.assert_array_equal(to_rgb(decoded), RGB)
    np.testing.assert_array_equal(decoded.pixels, message_to_cvimage(msg))


def test_png_mono_rgba_and_sixteen_bit_survive():
    gray = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    decoded = decode_compressed(_compressed(gray, '.png', 'mono8; png compressed'))
    assert decoded.order == 'mono'
    np.testing.assert_array_equal(decoded.pixels[..., 0], gray)

    bgra = _source_pixels('bgra8')
    decoded = decode_compressed(_compressed(bgra, '.png', 'bgra8; png compressed'))
    assert decoded.order == 'bgra'
    np.testing.assert_array_equal(decoded.pixels, bgra)  # alpha kept
    np.testing.assert_array_equal(to_rgb(decoded), RGB)

    wide = _source_pixels('mono16')[..., 0]
    decoded = decode_compressed(_compressed(wide, '.png', 'mono16; png compressed'))
    assert decoded.order == 'mono' and decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels[..., 0], (wide >> 8).astype(np.uint8))


# --- rejections ---------------------------------------------------------------------------------

class _Untouchable:
    """Message whose data must not be read: proves a check happened before the buffer."""

    def __init__(self, **fields) -> None:
        self.__dict__.update(is_bigendian=0, **fields)

    @property
    def data(self):
        raise AssertionError('data was touched before the message was validated')


def test_unknown_encoding():
    for encoding in ('yuv420', 'nv12', '32FC1', ''):
        exc = _rejected(decode_image, _Untouchable(height=2, width=2, step=6, encoding=encoding))
        assert exc.reason == 'unsupported_encoding'
        assert repr(encoding) in exc.detail and 'rgb8' in exc.detail


def test_zero_size():
    exc = _rejected(decode_image, _Untouchable(height=0, width=10, step=30, encoding='rgb8'))
    assert exc.reason == 'zero_size' and exc.detail == 'image is 10x0 (width x height)'
    exc = _rejected(decode_image, _Untouchable(height=4, width=0, step=0, encoding='mono8'))
    assert exc.reason == 'zero_size' and '0x4' in exc.detail


def test_too_many_pixels_is_rejected_before_allocation():
    huge = _Untouchable(height=2 ** 31, width=2 ** 31, step=3 * 2 ** 31, encoding='rgb8')
    exc = _rejected(decode_image, huge)
    assert exc.reason == 'too_large'
    assert exc.detail == (f'2147483648x2147483648 = {2 ** 62} pixels exceeds '
                          f'max_image_pixels {4096 * 4096}')
    # The limit is the caller's, inclusive.
    exc = _rejected(decode_image, _Untouchable(height=10, width=11, step=33, encoding='rgb8'),
                    max_pixels=109)
    assert exc.reason == 'too_large' and 'max_image_pixels 109' in exc.detail
    exact = decode_image(_image(RGB[:10, :11], 'rgb8'), max_pixels=110)
    assert exact.pixels.shape == (10, 11, 3)


def test_step_smaller_than_a_row():
    short = _Untouchable(height=H, width=W, step=W * 3 - 1, encoding='rgb8')
    exc = _rejected(decode_image, short)
    assert exc.reason == 'bad_step'
    assert exc.detail == 'step 158 < width*bytes_per_pixel 159 (53*3) for rgb8'
    exc = _rejected(decode_image, _Untouchable(height=H, width=W, step=W, encoding='mono16'))
    assert exc.reason == 'bad_step' and 'width*bytes_per_pixel 106 (53*2)' in exc.detail


@pytest.mark.parametrize('encoding,pad', [('rgb8', 0), ('rgb8', 9), ('mono16', 0)])
def test_truncated_data_even_by_one_byte(encoding, pad):
    msg = _image(_source_pixels(encoding), encoding, pad)
    full = bytes(msg.data)
    decode_image(msg)  # all of it: accepted
    msg.data = full[:-1]  # even the last row's padding is required
    exc = _rejected(decode_image, msg)
    need = msg.step * H
    assert exc.reason == 'truncated'
    assert exc.detail == (f'{need - 1} bytes of {encoding} data, need step*height = '
                          f'{msg.step}*{H} = {need}')
    msg.data = b''
    assert _rejected(decode_image, msg).detail.startswith(f'0 bytes of {encoding} data')


def test_extra_data_beyond_the_last_row_is_ignored():
    msg = _image(RGB, 'rgb8', 2)
    msg.data = bytes(msg.data) + b'\x00' * 17
    np.testing.assert_array_equal(decode_image(msg).pixels, RGB)


def test_unknown_compressed_format():
    for fmt in ('tiff', '', 'webp', '16UC1; compressedDepth png'):
        exc = _rejected(decode_compressed, CompressedImage(format=fmt, data=b'abc'))
        assert exc.reason == 'unsupported_format' and repr(fmt) in exc.detail


def test_empty_compressed_data():
    exc = _rejected(decode_compressed, CompressedImage(format='jpeg', data=b''))
    assert exc.reason == 'truncated' and exc.detail == 'jpeg compressed image has no data'


def test_corrupt_jpeg():
    ok, buf = cv2.imencode('.jpg', SMOOTH)
    good = buf.tobytes()
    half = len(good) // 2
    exc = _rejected(decode_compressed, CompressedImage(format='jpeg', data=good[:half]))
    assert exc.reason == 'truncated'  # libjpeg would fill the missing part grey
    assert exc.detail == f'jpeg data ({half} bytes) has no end-of-image marker: cut off'
    broken = CompressedImage(format='jpeg', data=good[:half] + b'\xff\xd9')  # ends, but broken
    exc = _rejected(decode_compressed, broken)
    assert exc.reason == 'corrupt_compressed'
    assert exc.detail == f'jpeg data ({half + 2} bytes) does not decode'
    padded = decode_compressed(CompressedImage(format='jpeg', data=good + bytes(10)))
    assert padded.pixels.shape == SMOOTH.shape  # padding after the end marker is accepted
    exc = _rejected(decode_compressed, CompressedImage(format='jpeg', data=good[:20]))
    assert exc.reason == 'corrupt_compressed' and exc.detail == 'no JPEG frame header in 20 bytes'
    ok, png = cv2.imencode('.png', SMOOTH)  # another format under a jpeg label: not sniffed
    exc = _rejected(decode_compressed, CompressedImage(format='jpeg', data=png.tobytes()))
    assert exc.reason == 'corrupt_compressed' and 'JPEG SOI marker' in exc.detail


def test_corrupt_png():
    ok, buf = cv2.imencode('.png', RGB)
    good = buf.tobytes()
    broken = CompressedImage(format='png', data=good[:len(good) // 2])
    exc = _rejected(decode_compressed, broken)
    assert exc.reason == 'corrupt_compressed'
    assert exc.detail == f'png data ({len(good) // 2} bytes) does not decode'
    exc = _rejected(decode_compressed, CompressedImage(format='png', data=b'\x00' * 64))
    assert exc.reason == 'corrupt_compressed'
    assert exc.detail == '64 bytes do not start with a PNG signature and IHDR chunk'


def _with_png_size(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode('.png', RGB)
    data = bytearray(buf.tobytes())
    data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    return bytes(data)


def _with_jpeg_size(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode('.jpg', SMOOTH)
    data = bytearray(buf.tobytes())
    sof = data.index(b'\xff\xc0')
    assert int.from_bytes(data[sof + 5:sof + 9], 'big') == (H << 16) | W  # header as we read it
    data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(data)


@pytest.mark.parametrize('fmt,patch', [('png', _with_png_size), ('jpeg', _with_jpeg_size)])
def test_compressed_bomb_is_rejected_from_its_header_before_decoding(fmt, patch):
    data = patch(60000, 60000)  # a few hundred bytes declaring 3.6 G pixels
    tracemalloc.start()
    try:
        exc = _rejected(decode_compressed, CompressedImage(format=fmt, data=data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exc.reason == 'too_large' and exc.detail.startswith('60000x60000 = 3600000000 pixels')
    assert peak < 1 << 20
    # The limit applies to real sizes too, and the header is read correctly.
    exc = _rejected(decode_compressed, CompressedImage(format=fmt, data=patch(W, H)),
                    max_pixels=W * H - 1)
    assert exc.reason == 'too_large' and exc.detail.startswith(f'{W}x{H} ')
    assert decode_compressed(CompressedImage(format=fmt, data=patch(W, H)),
                             max_pixels=W * H).pixels.shape[:2] == (H, W)
    exc = _rejected(decode_compressed, CompressedImage(format=fmt, data=patch(0, H)))
    assert exc.reason == 'zero_size'


# --- driver encodings converted by OpenCV: YUV 4:2:2 and Bayer ----------------------------------

SMOOTH_EVEN = cv2.GaussianBlur(RNG.integers(0, 256, (36, 52, 3), dtype=np.uint8), (0, 0), 4)


@pytest.mark.parametrize('encoding,order', [('yuv422', 'uyvy'), ('uyvy', 'uyvy'),
                                            ('yuv422_yuy2', 'yuyv'), ('yuyv', 'yuyv')])
def test_yuv422_decodes_to_the_rgb_it_was_packed_from(encoding, order):
    packed = yuv422_from_rgb(SMOOTH_EVEN, order)
    decoded = decode_image(_image(packed, encoding, pad=6))
    assert decoded.order == 'rgb' and decoded.pixels.shape == SMOOTH_EVEN.shape
    assert np.abs(decoded.pixels.astype(int) - SMOOTH_EVEN).mean() < 3
    reference = message_to_cvimage(_image(packed, encoding), 'rgb8')  # independent mapping
    np.testing.assert_array_equal(decoded.pixels, reference)


@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_demosaics_to_the_scene_it_was_sampled_from(pattern, bits):
    mosaic = bayer_from_rgb(SMOOTH_EVEN, pattern)
    if bits == 16:
        mosaic = mosaic.astype(np.uint16) * 257  # the high byte is the 8-bit value
    encoding = f'bayer_{pattern}{bits}'
    decoded = decode_image(_image(mosaic, encoding, pad=4, bigendian=bits == 16))
    assert decoded.order == 'rgb' and decoded.pixels.shape == SMOOTH_EVEN.shape
    inner = (slice(2, -2), slice(2, -2))  # borders are extrapolated
    error = np.abs(decoded.pixels[inner].astype(int) - SMOOTH_EVEN[inner]).mean()
    assert error < 6, error  # a wrong pattern swaps red and blue: error in the tens


@pytest.mark.parametrize('encoding,width,height,reason', [
    ('yuv422', 7, 4, 'even width'), ('yuyv', 1, 1, 'even width'),
    ('bayer_rggb8', 1, 5, '2x2'), ('bayer_grbg16', 6, 1, '2x2')])
def test_converted_encodings_refuse_sizes_they_cannot_have(encoding, width, height, reason):
    msg = Image(width=width, height=height, encoding=encoding, step=width * 2,
                data=bytes(width * height * 2))
    error = _rejected(check_image, msg)
    assert error.reason == 'bad_size' and reason in error.detail


def test_converted_encodings_are_checked_against_their_data_like_the_others():
    packed = yuv422_from_rgb(SMOOTH_EVEN, 'uyvy')
    msg = _image(packed, 'uyvy')
    msg.step = SMOOTH_EVEN.shape[1]  # one byte per pixel: short for 4:2:2
    assert _rejected(decode_image, msg).reason == 'bad_step'
    msg = _image(packed, 'uyvy')
    msg.data = bytes(msg.data)[:-1]
    assert _rejected(decode_image, msg).reason == 'truncated'


# --- colour, resizing, encoding -----------------------------------------------------------------

@pytest.mark.parametrize('size', [(20, 14), (80, 60), (20, 60), (W, H)],
                         ids=['shrink', 'grow', 'mixed', 'same'])
@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_resize_to_rgb_matches_opencv_on_the_rgb_image(encoding, size):
    decoded = decode_image(_image(_source_pixels(encoding), encoding, pad=3))
    rgb = to_rgb(decoded)
    width, height = size
    expected = resize(np.ascontiguousarray(rgb), size)
    result = resize_to_rgb(decoded, width, height)
    assert result.shape == (height, width, 3) and result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected)  # resizing works per channel: exact
    if size == (W, H) and encoding == 'rgb8':
        assert result is decoded.pixels


@pytest.mark.parametrize('src, dst, steps', [
    ((640, 480), (256, 192), [((320, 240), cv2.INTER_AREA), ((256, 192), cv2.INTER_LINEAR)]),
    ((640, 480), (320, 240), [((320, 240), cv2.INTER_AREA)]),
    ((1920, 1080), (256, 144), [((320, 180), cv2.INTER_AREA), ((256, 144), cv2.INTER_LINEAR)]),
    ((W, H), (20, 14), [((20, 14), cv2.INTER_AREA)]),  # 2.6x, but no whole block fits 53x37
    ((400, 300), (256, 192), [((256, 192), cv2.INTER_AREA)]),  # less than 2x
    ((W, H), (80, 60), [((80, 60), cv2.INTER_LINEAR)]),  # growing
], ids=['vga-to-network', 'vga-half', 'hd-block-6', 'no-block', 'under-2x', 'grow'])
def test_the_resize_rule_averages_whole_blocks_then_shrinks_the_rest(src, dst, steps):
    frame = RNG.integers(0, 256, (src[1], src[0], 3), dtype=np.uint8)
    expected = frame
    for size, how in steps:
        expected = cv2.resize(expected, size, interpolation=how)
    np.testing.assert_array_equal(resize(frame, dst), expected)
    into = np.zeros((dst[1], dst[0], 3), np.uint8)
    assert resize(frame, dst, dst=into) is into
    np.testing.assert_array_equal(into, expected)


def test_resize_to_rgb_refuses_an_empty_size():
    with pytest.raises(ValueError, match='0x14'):
        resize_to_rgb(DecodedImage(RGB, 'rgb'), 0, 14)


def test_to_rgb_converts_every_order():
    assert to_rgb(DecodedImage(RGB, 'rgb')) is RGB
    for encoding in ('bgr8', 'rgba8', 'bgra8'):
        np.testing.assert_array_equal(to_rgb(DecodedImage(_source_pixels(encoding),
                                                          ORDER[encoding])), RGB)
    gray = _source_pixels('mono8')
    np.testing.assert_array_equal(to_rgb(DecodedImage(gray, 'mono')), np.repeat(gray, 3, 2))


def test_packed_rows_round_trip_through_an_image_message():
    mask = RNG.integers(0, 19, (H, W), dtype=np.uint8)
    rows, step = packed_rows(mask, 'mono8')
    assert rows is mask and step == W  # contiguous: no copy
    msg = Image(height=H, width=W, encoding='mono8', step=step, data=rows.tobytes())
    np.testing.assert_array_equal(decode_image(msg).pixels[..., 0], mask)

    rows, step = packed_rows(RGB, 'rgb8')
    assert step == W * 3
    msg = Image(height=H, width=W, encoding='rgb8', step=step, data=rows.tobytes())
    np.testing.assert_array_equal(decode_image(msg).pixels, RGB)
    np.testing.assert_array_equal(message_to_cvimage(msg), RGB)

    # Non-contiguous input (a crop, a padded view) still yields tightly packed rows.
    rows, step = packed_rows(RGB[1:, 2:], 'rgb8')
    assert step == (W - 2) * 3 and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, RGB[1:, 2:])
    rows, step = packed_rows(mask[:, ::2], 'mono8')
    assert step == (W + 1) // 2 and rows.flags.c_contiguous


def test_packed_rows_refuse_the_wrong_shape_type_or_encoding():
    with pytest.raises(ValueError, match='HxW uint8'):
        packed_rows(RGB, 'mono8')
    with pytest.raises(ValueError, match='HxW uint8'):
        packed_rows(np.zeros((4, 4), np.int32), 'mono8')
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        packed_rows(_source_pixels('rgba8'), 'rgb8')
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        packed_rows(RGB.astype(np.float32), 'rgb8')
    with pytest.raises(ValueError, match='mono8 or rgb8, not bgr8'):
        packed_rows(RGB, 'bgr8')
