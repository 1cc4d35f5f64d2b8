"""Arrays and regions -> ROS messages, and back the way subscribers read them."""

import numpy as np
import pytest
from std_msgs.msg import Header

import cv2
from sensor_msgs.msg import CameraInfo

from jetson_seg.vision.image_conversion import decode_compressed, decode_image, to_rgb
from jetson_seg.ros.messages import (class_index, class_labels, compressed_msg, detection_boxes,
                                     detections_msg, image_msg, mask_camera_info)
from jetson_seg.vision.postprocess import Region


NAMES = ('background', 'disc', 'rectangle', 'triangle')


@pytest.mark.parametrize('as_names,ids', [(False, ('1', '3')), (True, ('disc', 'triangle'))])
def test_detections_round_trip_with_header_ids_and_scores(as_names, ids):
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 34
    regions = [Region(1, 10, 20, 50, 80, 1500, 0.93), Region(3, 0, 0, 5, 7, 30, 0.51)]
    msg = detections_msg(header, regions, class_labels(NAMES, as_names))
    assert msg.header == header and all(d.header == header for d in msg.detections)
    expected = [(10, 20, 50, 80, ids[0], pytest.approx(0.93)),
                (0, 0, 5, 7, ids[1], pytest.approx(0.51))]
    assert detection_boxes(msg) == expected
    assert [class_index(box[4], NAMES) for box in detection_boxes(msg)] == [1, 3]


def _camera_info(width: int, height: int) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.k = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
    info.p = [500.0, 0.0, 320.0, -25.0, 0.0, 510.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.1, -0.2, 0.0, 0.0, 0.05]
    info.binning_x = info.binning_y = 1
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 40, 20, 320, 240
    return info


def test_mask_camera_info_is_the_input_at_input_size_and_scaled_otherwise():
    header = Header(frame_id='cam')
    info = _camera_info(640, 480)
    same = mask_camera_info(info, header, 640, 480)
    for field in ('width', 'height', 'distortion_model', 'binning_x', 'binning_y', 'roi'):
        assert getattr(same, field) == getattr(info, field), field
    for field in ('k', 'p', 'd', 'r'):
        np.testing.assert_array_equal(getattr(same, field), getattr(info, field))
    small = mask_camera_info(info, header, 256, 192)  # network size: 0.4 on both axes
    assert (small.width, small.height, small.header) == (256, 192, header)
    np.testing.assert_allclose(small.k, [200, 0, 128, 0, 204, 96, 0, 0, 1])
    np.testing.assert_allclose(small.p, [200, 0, 128, -10, 0, 204, 96, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(small.d, info.d)
    assert (small.roi.x_offset, small.roi.y_offset, small.roi.width, small.roi.height) == \
        (16, 8, 128, 96)
    assert (small.binning_x, small.binning_y) == (1, 1)
    # a projection through the scaled model lands on the scaled pixel
    point = np.array([0.3, -0.2, 2.0])
    u, v, w = np.array(info.k).reshape(3, 3) @ point
    su, sv, sw = np.array(small.k).reshape(3, 3) @ point
    assert su / sw == pytest.approx(u / w * 0.4) and sv / sw == pytest.approx(v / w * 0.4)


def test_compressed_outputs_decode_to_what_was_encoded():
    rng = np.random.default_rng(1)
    mask = rng.integers(0, 4, (48, 64), dtype=np.uint8)
    msg = compressed_msg(Header(), mask, 'mono8', 'png')
    assert msg.format == 'mono8; png compressed mono8'
    np.testing.assert_array_equal(decode_compressed(msg).pixels[..., 0], mask)  # lossless
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (9, 9), 3)
    msg = compressed_msg(Header(), rgb, 'rgb8', 'jpeg', jpeg_quality=95)
    assert msg.format == 'rgb8; jpeg compressed bgr8'
    back = to_rgb(decode_compressed(msg)).astype(int)
    assert np.abs(back - rgb).mean() < 3  # colour order kept: swapped channels differ a lot


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


def test_tracks_carry_ids_boxes_velocities_ages_and_directions_with_camera_info():
    from jetson_seg.ros.messages import tracks_msg
    from jetson_seg.vision.camera_model import CameraModel
    from jetson_seg.vision.tracker import Track
    header = Header(frame_id='cam')
    header.stamp.sec = 7
    tracks = [Track(4, 1, (300.0, 220.0, 340.0, 260.0), (120.0, -30.0), 0.25, 30, 0.0, 0, 0.9,
                    within=0),
              Track(9, 3, (0.0, 10.0, 20.0, 50.0), (0.0, 0.0), 1.5, 170, 0.05, None, 0.6),
              Track(5, 1, (310.0, 220.0, 330.0, 250.0), (90.0, 0.0), 0.5, 60, 0.0, None, 0.9,
                    within=0)]  # shares the first one's region
    labels = class_labels(NAMES, True)
    plain = tracks_msg(header, tracks, labels)
    assert plain.header == header
    first, second, sharing = plain.tracks
    assert (first.id, first.class_id, first.seen, first.hits) == ('4', 'disc', True, 30)
    assert (second.id, second.class_id, second.seen) == ('9', 'triangle', False)
    assert not first.shares_region and not second.shares_region
    assert sharing.seen and sharing.shares_region and sharing.bbox.size_x == 20.0
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (320.0, 240.0)
    assert (second.bbox.size_x, second.bbox.size_y) == (20.0, 40.0)
    assert (first.velocity_x, first.velocity_y, first.age) == (120.0, -30.0, 0.25)
    assert second.since_seen == pytest.approx(0.05) and first.score == pytest.approx(0.9)
    assert (first.direction.z, first.direction_rate.x) == (0.0, 0.0)  # no camera: zero
    camera = CameraModel(500.0, 510.0, 320.0, 240.0)
    seen = tracks_msg(header, tracks, labels, camera).tracks
    # the first box is centred on the principal point: looking straight ahead, turning right
    assert (seen[0].direction.x, seen[0].direction.y) == (0.0, 0.0)
    assert seen[0].direction.z == pytest.approx(1.0)
    assert seen[0].direction_rate.x == pytest.approx(120.0 / 500.0, rel=1e-3)
    assert seen[0].direction_rate.y == pytest.approx(-30.0 / 510.0, rel=1e-3)
    assert seen[1].direction.x < 0 and seen[1].direction.y < 0  # up left of the centre
    norm = np.hypot(np.hypot(seen[1].direction.x, seen[1].direction.y), seen[1].direction.z)
    assert norm == pytest.approx(1.0)
