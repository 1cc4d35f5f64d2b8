"""Images as CDR bytes: what the node writes and reads is what rclpy writes and reads."""

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from jetson_seg.ros.interface import set_stamp, stamp_key
from jetson_seg.ros.messages import compressed_msg, detections_msg, image_msg
from jetson_seg.ros.serialized import received_image, serialized_image, stamp_key_of
from jetson_seg.vision.image_conversion import ImageRejected, decode_image
from jetson_seg.vision.postprocess import Region

FRAME_IDS = ['', 'a', 'ab', 'abc', 'abcd', 'camera_optical_frame']
SHAPES = [('mono8', (5, 7)), ('rgb8', (3, 5, 3)), ('rgb8', (48, 64, 3))]


def _header(frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = -7, 999_999_999
    return header


@pytest.mark.parametrize('frame_id', FRAME_IDS)
@pytest.mark.parametrize('encoding,shape', SHAPES)
def test_written_images_are_what_rclpy_reads(frame_id, encoding, shape):
    """Every alignment of the strings against the fields after them, both encodings."""
    header = _header(frame_id)
    pixels = np.random.default_rng(len(frame_id)).integers(0, 256, shape, dtype=np.uint8)
    data = serialized_image(header, pixels, encoding)
    expected = image_msg(header, pixels, encoding)
    assert deserialize_message(data, Image) == expected
    assert len(data) == len(serialize_message(expected))


@pytest.mark.parametrize('frame_id', FRAME_IDS)
@pytest.mark.parametrize('encoding,shape', SHAPES + [('bgra8', (4, 6, 4)), ('mono16', (4, 6))])
def test_read_images_are_what_rclpy_wrote_and_view_its_bytes(frame_id, encoding, shape):
    depth = 2 if '16' in encoding else 1
    msg = Image(header=_header(frame_id), height=shape[0], width=shape[1], encoding=encoding,
                is_bigendian=1, step=shape[1] * int(np.prod(shape[2:])) * depth)
    msg.data = np.random.default_rng(3).integers(0, 256, msg.step * msg.height,
                                                 dtype=np.uint8).tobytes()
    data = serialize_message(msg)
    got = received_image(data)
    assert got.header == msg.header
    assert (got.height, got.width, got.encoding, got.is_bigendian, got.step) == \
        (msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step)
    assert bytes(got.data) == bytes(msg.data)
    assert got.data.obj is data  # a view of the delivered bytes, not a copy
    if encoding in ('mono8', 'rgb8'):
        np.testing.assert_array_equal(decode_image(got).pixels, decode_image(msg).pixels)


def test_cut_bytes_and_other_encapsulations_are_rejected_as_malformed():
    data = serialize_message(image_msg(_header('cam'), np.zeros((4, 6), np.uint8), 'mono8'))
    for cut in (0, 3, 10, 17, len(data) - 1):
        with pytest.raises(ImageRejected) as caught:
            received_image(data[:cut])
        assert caught.value.reason == 'malformed'
    with pytest.raises(ImageRejected, match='0x0003 is not plain CDR'):
        received_image(b'\x00\x03' + data[2:])  # a parameter list
    assert received_image(b'\x00\x07' + data[2:]).encoding == 'mono8'  # plain XCDR2


def test_written_images_pack_views_and_refuse_what_they_cannot_encode():
    rgb = np.random.default_rng(1).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    back = deserialize_message(serialized_image(Header(), rgb[1:, ::2], 'rgb8'), Image)
    np.testing.assert_array_equal(decode_image(back).pixels, rgb[1:, ::2])
    with pytest.raises(ValueError, match='HxW uint8'):
        serialized_image(Header(), rgb, 'mono8')


def test_a_monitor_reads_the_stamp_of_any_output_without_deserializing_it():
    header = Header(frame_id='cam')
    set_stamp(header, 1_700_000_000_123_456_789)
    mask = np.zeros((4, 6), np.uint8)
    for data in (serialize_message(image_msg(header, mask, 'mono8')),
                 serialized_image(header, mask, 'mono8'),
                 serialize_message(detections_msg(header, [Region(1, 0, 0, 2, 2, 4, 0.5)],
                                                  ('background', 'disc'))),
                 serialize_message(compressed_msg(header, mask, 'mono8', 'png'))):
        assert stamp_key_of(data) == stamp_key(header.stamp) == 1_700_000_000_123_456_789
