"""sensor_msgs Image / CompressedImage <-> numpy, validated before anything is allocated.

Works on any object with the message fields (duck typing), so this core never imports rclpy and
can be tested, benchmarked and used on bag messages without a ROS graph. Camera input is
untrusted: every size is checked against the data before a buffer is touched, and a bad message
raises `ImageRejected` with a short `reason` the node counts in diagnostics.

8-bit encodings decode to zero-copy views of the message buffer (row padding included), because
a copy of every frame costs more than the rest of the preprocessing.
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


#: encoding -> (channels, bytes per channel, channel order); 8UCx follow cv_bridge (bgr/bgra).
_ENCODINGS: dict[str, tuple[int, int, str]] = {
    'rgb8': (3, 1, 'rgb'), 'bgr8': (3, 1, 'bgr'), 'rgba8': (4, 1, 'rgba'),
    'bgra8': (4, 1, 'bgra'), 'mono8': (1, 1, 'mono'), 'mono16': (1, 2, 'mono'),
    '8UC1': (1, 1, 'mono'), '8UC3': (3, 1, 'bgr'), '8UC4': (4, 1, 'bgra'),
    '16UC1': (1, 2, 'mono'),
}
DIRECT_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
#: Driver encodings (sensor_msgs image_encodings names) OpenCV converts to RGB while decoding:
#: packed YUV 4:2:2 (usb_cam's default; 'yuv422' is UYVY byte order) and Bayer mosaics, which
#: cannot be resized before the conversion. OpenCV names a Bayer pattern after its second row.
_CONVERTED: dict[str, tuple[int, int, int]] = {
    'yuv422': (2, 1, cv2.COLOR_YUV2RGB_UYVY), 'uyvy': (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': (2, 1, cv2.COLOR_YUV2RGB_YUYV), 'yuyv': (2, 1, cv2.COLOR_YUV2RGB_YUYV),
    **{f'bayer_{pattern}{bits}': (1, bits // 8, code) for bits in (8, 16)
       for pattern, code in (('rggb', cv2.COLOR_BayerBG2RGB), ('bggr', cv2.COLOR_BayerRG2RGB),
                             ('gbrg', cv2.COLOR_BayerGR2RGB), ('grbg', cv2.COLOR_BayerGB2RGB))},
}
_ENCODINGS.update({name: (channels, depth, 'converted')
                   for name, (channels, depth, _) in _CONVERTED.items()})
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_TO_RGB = {'bgr': cv2.COLOR_BGR2RGB, 'rgba': cv2.COLOR_RGBA2RGB, 'bgra': cv2.COLOR_BGRA2RGB,
           'mono': cv2.COLOR_GRAY2RGB}
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
#: JPEG start-of-frame markers (all but DHT 0xC4, JPG 0xC8 and DAC 0xCC carry the frame size).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class DecodedImage:
    """Pixels plus their channel order, so colour is converted once, on the smallest image.

    `pixels` is HxWxC uint8 with C in (1, 3, 4); for 8-bit encodings it is a view of the
    message buffer (do not write to it). `order` is 'rgb', 'bgr', 'rgba', 'bgra' or 'mono'.
    """

    pixels: np.ndarray
    order: str


def check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected('zero_size', f'image is {width}x{height} (width x height)')
    if width * height > max_pixels:
        raise ImageRejected('too_large', f'{width}x{height} = {width * height} pixels exceeds '
                                         f'max_image_pixels {max_pixels}')


def byte_view(data) -> np.ndarray:
    """Flat uint8 view of bytes, bytearray, array.array, memoryview or a contiguous ndarray."""
    try:
        return np.frombuffer(data, np.uint8)
    except (TypeError, ValueError):  # a list, or a non-contiguous array: one copy, still correct
        return np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)


def _check_convertible(encoding: str, width: int, height: int) -> None:
    """YUV 4:2:2 shares chroma between pixel pairs; a Bayer tile is 2x2."""
    if encoding.startswith('bayer_') and (width < 2 or height < 2):
        raise ImageRejected('bad_size', f'{encoding} needs at least 2x2 pixels, got '
                                        f'{width}x{height}')
    if not encoding.startswith('bayer_') and width % 2:
        raise ImageRejected('bad_size', f'{encoding} needs an even width, got {width}')


def check_image(msg, max_pixels: int = 4096 * 4096) -> tuple[int, int, str]:
    """Validate a sensor_msgs/Image's header against its data without touching the pixels.

    Cheap enough for a subscription callback. Returns (bytes per channel, bytes per row,
    channel order). Raises `ImageRejected` for an unknown encoding, a zero or oversized image,
    a `step` shorter than a row, or fewer than `step * height` bytes.
    """
    layout = _ENCODINGS.get(msg.encoding)
    if layout is None:
        raise ImageRejected('unsupported_encoding',
                            f'{msg.encoding!r} is not one of {", ".join(SUPPORTED_ENCODINGS)}')
    channels, depth, order = layout
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    check_size(width, height, max_pixels)
    if order == 'converted':
        _check_convertible(msg.encoding, width, height)
    row_bytes = _check_rows(msg, width, height, step, channels * depth, msg.encoding)
    return depth, row_bytes, order


def _check_rows(msg, width: int, height: int, step: int, pixel_bytes: int, what: str) -> int:
    """The bytes of a row's pixels, after checking `step` and that every row's data is there."""
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageRejected('bad_step', f'step {step} < width*bytes_per_pixel {row_bytes} '
                                        f'({width}*{pixel_bytes}) for {what}')
    size = byte_view(msg.data).size
    if size < step * height:
        raise ImageRejected('truncated', f'{size} bytes of {what} data, need step*height = '
                                         f'{step}*{height} = {step * height}')
    return row_bytes


def decode_image(msg, max_pixels: int = 4096 * 4096) -> DecodedImage:
    """Decode a sensor_msgs/Image; 8-bit encodings return a view of `msg.data`, not a copy.

    Validated first (`check_image`). mono16/16UC1 keep their high byte (value >> 8),
    honouring `is_bigendian`. YUV 4:2:2 and Bayer encodings come back converted to RGB.
    """
    depth, row_bytes, order = check_image(msg, max_pixels)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    buffer = byte_view(msg.data)
    # Rows of `step` bytes, padding sliced off: still a view (strides step, 1).
    rows = buffer[:step * height].reshape(height, step)[:, :row_bytes]
    if depth == 1:
        pixels = rows.reshape(height, width, -1)
    else:  # value >> 8 is the high byte: byte 0 of each pair when big-endian, byte 1 when little
        high = rows[:, (0 if msg.is_bigendian else 1)::2]
        pixels = np.ascontiguousarray(high).reshape(height, width, 1)
    if order == 'converted':
        code = _CONVERTED[msg.encoding][2]
        return DecodedImage(cv2.cvtColor(pixels if pixels.shape[2] > 1 else pixels[..., 0],
                                         code), 'rgb')
    return DecodedImage(pixels, order)


#: Depth encodings (REP 117): bytes per pixel, stored type, metres per stored unit.
_DEPTH_ENCODINGS: dict[str, tuple[int, str, float]] = {'16UC1': (2, 'u2', 0.001),
                                                       '32FC1': (4, 'f4', 1.0)}
DEPTH_ENCODINGS: tuple[str, ...] = tuple(_DEPTH_ENCODINGS)


@dataclass(frozen=True)
class DepthImage:
    """A depth image as it arrived: stored values plus the metres one unit stands for.

    `values` is HxW uint16 (millimetres) or float32 (metres), a view of the message buffer when
    it is little-endian (do not write to it). It is not converted to metres as a whole: that
    cost 0.95 ms at 640x480 (uint16 -> float32 with NaN holes; a 64 k-entry lookup table 1.0
    ms) against 0.12 ms for a copy, while the 3D outputs read only the objects' pixels. REP 117:
    no reading is 0 in 16UC1, and 0, NaN or +-inf in 32FC1 (negative depths are no reading too).
    """

    values: np.ndarray
    scale: float  # metres per stored unit

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def valid(self, values: np.ndarray | None = None) -> np.ndarray:
        """Where `values` (default: the whole image) hold a reading."""
        values = self.values if values is None else values
        if values.dtype.kind == 'u':
            return values > 0
        return (values > 0) & (values < np.inf)  # NaN compares False both times

    def metres(self, values: np.ndarray | None = None) -> np.ndarray:
        """float32 metres of `values` (default: the whole image), NaN where no reading."""
        values = self.values if values is None else values
        out = np.multiply(values, np.float32(self.scale), dtype=np.float32)
        out[~self.valid(values)] = np.nan
        return out


def check_depth(msg, max_pixels: int = 4096 * 4096) -> int:
    """Validate a depth sensor_msgs/Image (16UC1 or 32FC1) like `check_image`; bytes per pixel."""
    layout = _DEPTH_ENCODINGS.get(msg.encoding)
    if layout is None:
        raise ImageRejected('unsupported_depth_encoding',
                            f'depth {msg.encoding!r} is neither 16UC1 (millimetres) nor 32FC1 '
                            f'(metres), REP 117')
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    check_size(width, height, max_pixels)
    _check_rows(msg, width, height, step, layout[0], f'depth {msg.encoding}')
    return layout[0]


def decode_depth(msg, max_pixels: int = 4096 * 4096) -> DepthImage:
    """Decode a depth sensor_msgs/Image (16UC1 mm or 32FC1 m), honouring step and endianness.

    Validated first (`check_depth`). Little-endian data stays a view of `msg.data`; big-endian
    data is swapped into native order (one copy).
    """
    depth = check_depth(msg, max_pixels)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _, kind, scale = _DEPTH_ENCODINGS[msg.encoding]
    rows = byte_view(msg.data)[:step * height].reshape(height, step)[:, :width * depth]
    values = rows.view(np.dtype(kind).newbyteorder('>' if msg.is_bigendian else '<'))
    if msg.is_bigendian:
        values = values.astype(kind)
    return DepthImage(values, scale)


def _compressed_kind(fmt: str) -> str:
    """'jpeg' or 'png' from a format such as 'jpeg' or 'bgr8; jpeg compressed bgr8'."""
    lowered = fmt.lower()
    if 'compresseddepth' in lowered:  # a private header precedes the png: not an image
        raise ImageRejected('unsupported_format', f'compressed format {fmt!r}: compressedDepth '
                                                  f'is not supported')
    words = set(lowered.replace(';', ' ').replace(',', ' ').split())
    if 'png' in words:
        return 'png'
    if words & {'jpeg', 'jpg'}:
        return 'jpeg'
    raise ImageRejected('unsupported_format', f'compressed format {fmt!r} is neither jpeg nor png')


def png_size(data: memoryview) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which the PNG standard puts first."""
    if len(data) < 24 or bytes(data[:8]) != _PNG_SIGNATURE or bytes(data[12:16]) != b'IHDR':
        raise ImageRejected('corrupt_compressed', f'{len(data)} bytes do not start with a PNG '
                                                  f'signature and IHDR chunk')
    return (int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big'))


_JPEG_TAIL = 32  # encoders may pad after the end-of-image marker; allow a few bytes


def _jpeg_size(data: memoryview) -> tuple[int, int]:
    """(width, height) from the start-of-frame segment, walking the few segments before it."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise ImageRejected('corrupt_compressed', f'{len(data)} bytes do not start with a JPEG '
                                                  f'SOI marker')
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            return (int.from_bytes(data[pos + 7:pos + 9], 'big'),
                    int.from_bytes(data[pos + 5:pos + 7], 'big'))
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    raise ImageRejected('corrupt_compressed', f'no JPEG frame header in {len(data)} bytes')


def check_compressed(msg, max_pixels: int = 4096 * 4096) -> tuple[str, np.ndarray]:
    """Validate a sensor_msgs/CompressedImage from its format and header, without decoding.

    The size in the PNG/JPEG header is checked against `max_pixels`, so a small message
    declaring a huge image is rejected without allocating it; the data must match the declared
    format (OpenCV would otherwise sniff and decode other formats unchecked); a JPEG without
    its end-of-image marker was cut off. Returns (kind, data as a flat uint8 view).
    """
    kind = _compressed_kind(msg.format)
    data = byte_view(msg.data)
    if data.size == 0:
        raise ImageRejected('truncated', f'{kind} compressed image has no data')
    header = memoryview(data)
    check_size(*(png_size(header) if kind == 'png' else _jpeg_size(header)), max_pixels)
    if kind == 'jpeg' and b'\xff\xd9' not in bytes(header[-_JPEG_TAIL:]):
        # libjpeg "decodes" a cut-off JPEG by filling the rest grey: segmenting that is wrong
        raise ImageRejected('truncated', f'jpeg data ({data.size} bytes) has no end-of-image '
                                         f'marker: cut off')
    return kind, data


def decode_compressed(msg, max_pixels: int = 4096 * 4096) -> DecodedImage:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to bgr/bgra/mono pixels.

    Validated first (`check_compressed`), then decoded and checked again.
    """
    kind, data = check_compressed(msg, max_pixels)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # keeps mono and alpha as they are
    if pixels is None or pixels.size == 0:
        raise ImageRejected('corrupt_compressed', f'{kind} data ({data.size} bytes) does not '
                                                  f'decode')
    check_size(pixels.shape[1], pixels.shape[0], max_pixels)
    if pixels.dtype != np.uint8:  # 16-bit png: keep the high byte, like mono16
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return DecodedImage(pixels[..., None], 'mono')
    if pixels.shape[2] not in (3, 4):
        raise ImageRejected('corrupt_compressed', f'{kind} decoded to {pixels.shape[2]} '
                                                  f'channels')
    return DecodedImage(pixels, 'bgr' if pixels.shape[2] == 3 else 'bgra')


def to_rgb(image: DecodedImage) -> np.ndarray:
    """HxWx3 uint8 RGB; the same array (no copy) when the image is already rgb."""
    if image.order == 'rgb':
        return image.pixels
    return cv2.cvtColor(image.pixels, _TO_RGB[image.order])


def resize(pixels: np.ndarray, dst_wh: tuple[int, int],
           dst: np.ndarray | None = None) -> np.ndarray:
    """The one resize rule for camera frames (and training labels): same pixels everywhere.

    Shrinking averages areas, so it does not alias. By 2x or more, the frame is first averaged
    over k x k blocks for the largest whole k that divides both sides (OpenCV's fast path:
    0.07 ms for 640x480 -> 320x240, where INTER_AREA straight to 256x192 took 0.9 ms), then
    shrunk the rest of the way (< 2x) bilinearly. Growing is bilinear.
    """
    src_h, src_w = pixels.shape[:2]
    factor = min(src_w / dst_wh[0], src_h / dst_wh[1])
    if factor < 1:
        return cv2.resize(pixels, dst_wh, dst=dst, interpolation=cv2.INTER_LINEAR)
    block = next((k for k in range(int(factor), 1, -1) if src_w % k == 0 and src_h % k == 0),
                 1)
    if block == 1:
        return cv2.resize(pixels, dst_wh, dst=dst, interpolation=cv2.INTER_AREA)
    averaged = cv2.resize(pixels, (src_w // block, src_h // block),
                          interpolation=cv2.INTER_AREA)
    if averaged.shape[:2] == (dst_wh[1], dst_wh[0]):
        if dst is None:
            return averaged
        dst[...] = averaged.reshape(dst.shape)
        return dst
    return cv2.resize(averaged, dst_wh, dst=dst, interpolation=cv2.INTER_LINEAR)


def resize_to_rgb(image: DecodedImage, width: int, height: int) -> np.ndarray:
    """HxWx3 RGB at width x height, resized first so the colour conversion touches fewer pixels.

    Resizing works per channel, so the result equals resizing the RGB image.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'target size must be positive, got {width}x{height}')
    pixels = image.pixels
    src_h, src_w = pixels.shape[:2]
    if (src_w, src_h) == (width, height):
        return to_rgb(image)
    pixels = resize(pixels, (width, height))
    if pixels.ndim == 2:  # OpenCV drops a single channel axis
        pixels = pixels[..., None]
    return to_rgb(DecodedImage(pixels, image.order))


def packed_rows(pixels: np.ndarray, encoding: str) -> tuple[np.ndarray, int]:
    """An HxW ('mono8') or HxWx3 ('rgb8') uint8 array with tightly packed rows, and its step.

    No copy when `pixels` is already C-contiguous (a crop or strided view is packed). The
    caller copies the rows once into its message: bytes for an rclpy field (assigning bytes
    is ~1000x faster than a numpy array), or the CDR stream itself.
    """
    if encoding == 'mono8' and (pixels.ndim != 2 or pixels.dtype != np.uint8):
        raise ValueError(f'mono8 needs an HxW uint8 array, got {pixels.shape} {pixels.dtype}')
    if encoding == 'rgb8' and (pixels.ndim != 3 or pixels.shape[2] != 3 or
                               pixels.dtype != np.uint8):
        raise ValueError(f'rgb8 needs an HxWx3 uint8 array, got {pixels.shape} {pixels.dtype}')
    if encoding not in ('mono8', 'rgb8'):
        raise ValueError(f'images are encoded mono8 or rgb8, not {encoding}')
    rows = np.ascontiguousarray(pixels)
    return rows, rows.strides[0]


def encode_compressed(pixels: np.ndarray, encoding: str, fmt: str, jpeg_quality: int = 80
                      ) -> tuple[str, bytes]:
    """(format, data) of a CompressedImage of a mono8 or rgb8 array, as image_transport names it.

    Colour is stored as bgr8 inside the jpeg/png, which is what image_transport's decoder expects.
    """
    if encoding not in ('mono8', 'rgb8') or fmt not in ('jpeg', 'png'):
        raise ValueError(f'encode_compressed takes mono8/rgb8 to jpeg/png, not {encoding}/{fmt}')
    stored = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if encoding == 'rgb8' else pixels
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == 'jpeg' else []
    ok, data = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', stored, params)
    if not ok:
        raise ValueError(f'OpenCV could not encode a {pixels.shape} {encoding} image as {fmt}')
    inner = 'bgr8' if encoding == 'rgb8' else 'mono8'
    return f'{encoding}; {fmt} compressed {inner}', data.tobytes()
