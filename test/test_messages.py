"""Arrays and regions -> ROS messages, and back the way subscribers read them."""

import numpy as np
import pytest
from std_msgs.msg import Header

from jetson_seg.vision.image_conversion import decode_image, to_rgb
from jetson_seg.ros.messages import detection_boxes, detections_msg, image_msg
from jetson_seg.vision.postprocess import Region


def test_detections_round_trip_with_header_names_and_scores():
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 34
    regions = [Region(1, 10, 20, 50, 80, 1500, 0.93), Region(3, 0, 0, 5, 7, 30, 0.51)]
    msg = detections_msg(header, regions, ('background', 'disc', 'rectangle', 'triangle'))
    assert msg.header == header and all(d.header == header for d in msg.detections)
    expected = [(10, 20, 50, 80, 'disc', pytest.approx(0.93)),
                (0, 0, 5, 7, 'triangle', pytest.approx(0.51))]
    assert detection_boxes(msg) == expected


def test_images_round_trip_and_refuse_what_they_cannot_encode():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, (48, 64), dtype=np.uint8)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(image_msg(Header(), mask, 'mono8')).pixels[..., 0],
                                  mask)
    np.testing.assert_array_equal(to_rgb(decode_image(image_msg(Header(), rgb[:, ::2], 'rgb8'))),
                                  rgb[:, ::2])  # a strided view is packed into rows
    with pytest.raises(ValueError, match='HxW uint8'):
        image_msg(Header(), rgb, 'mono8')
    with pytest.raises(ValueError, match='mono8 or rgb8, not bgr8'):
        image_msg(Header(), rgb, 'bgr8')
