"""What the node publishes for what it receives, over DDS.

Masks of every encoding and their quality, letterboxing, label info, class ids, camera_info,
compressed inputs and outputs, the outputs nobody asks for and the viewer rate cap.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from image_msgs import compressed_from_rgb, image_from_rgb, mask_array, stamped
from ros_harness import (ROBOT_NS, ROBOT_TARGET, NodeProcess, big_disc, robot_client,
                         set_parameter)
from sensor_msgs.msg import CameraInfo, CompressedImage

from jetson_seg.ros.messages import class_index, detection_boxes
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.metrics import ConfusionMatrix, match_boxes
from jetson_seg.training.scenes import CLASS_COLORS, CLASS_NAMES, SceneSpec, scene_stream
from jetson_seg.vision.image_conversion import decode_compressed, decode_image
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted


#: Pixel-level mIoU the published masks must reach on generated scenes (README states the
#: held-out figure of the model itself; this is the floor for a handful of frames).
MIOU_FLOOR = 0.88  # served as mixed INT8 (auto) the default model reaches 0.912 here


FEW_FRAMES_MIOU_FLOOR = 0.65  # 3 frames per encoding, mono8 too: 0.75-0.96 seen


MIN_BOX_AREA = 400  # ground-truth boxes this large (px at 640x480) count for recall


RECALL_FLOOR = 0.85  # (0.905 reached) of those, found with the right class and box IoU >= 0.5


STAMPS = itertools.count(1)  # every frame of the module gets its own stamp


def _rgb_array(msg) -> np.ndarray:
    assert msg.encoding == 'rgb8'
    return decode_image(msg).pixels


def _boxes(det_array) -> list[tuple]:
    return [(*box[:4], class_index(box[4], CLASS_NAMES)) for box in detection_boxes(det_array)]


class Recall:
    """Detection recall over several frames (single frames are too few to judge)."""

    def __init__(self) -> None:
        self.tp = self.fn = 0

    def add(self, truth: list, found: list) -> None:
        tp, _fp, fn = match_boxes(truth, found, 0.5)
        self.tp, self.fn = self.tp + tp, self.fn + fn

    @property
    def value(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)


def _boxes_match_mask_regions(boxes: list, mask: np.ndarray) -> None:
    """Each detection is exactly the bounding box of one connected region of its class."""
    regions = set()
    for cls in range(1, len(CLASS_NAMES)):
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask == cls).view(np.uint8), 8)
        regions |= {(x, y, x + w, y + h, cls) for x, y, w, h, _ in stats[1:n]}
    for box in boxes:
        assert tuple(int(round(v)) for v in box[:4]) + (box[4],) in regions, box


def _check_answer(answer: dict, msg, scene, conf: ConfusionMatrix, recall: Recall) -> None:
    for key, out in answer.items():
        assert out.header.frame_id == msg.header.frame_id, key
        assert out.header.stamp == msg.header.stamp, key
    mask = mask_array(answer['mask'])
    assert mask.shape == scene.mask.shape
    conf.add(scene.mask, mask)
    colors = _rgb_array(answer['color_mask'])
    np.testing.assert_array_equal(colors, np.array(CLASS_COLORS, np.uint8)[mask])
    overlay = _rgb_array(answer['overlay'])
    assert overlay.shape == scene.image.shape
    found = _boxes(answer['detections'])
    _boxes_match_mask_regions(found, mask)
    recall.add([b for b in scene.boxes if (b[2] - b[0]) * (b[3] - b[1]) >= MIN_BOX_AREA], found)


@pytest.mark.parametrize('encoding,pad', [('rgb8', 0), ('bgr8', 64), ('mono8', 0),
                                          ('bgra8', 8), ('rgb8', 3)])
def test_encodings_give_input_sized_masks_with_header(client, encoding, pad):
    scenes = scene_stream(seed=len(encoding) * 100 + pad)
    conf, recall = ConfusionMatrix(len(CLASS_NAMES)), Recall()
    for _ in range(3):
        scene = next(scenes)
        msg = stamped(image_from_rgb(scene.image, encoding, pad), next(STAMPS),
                      frame_id=f'cam_{encoding}')
        _check_answer(client.request(msg), msg, scene, conf, recall)
    print(f'mIoU of 3 {encoding} frames (pad {pad}):', conf.mean_iou())
    assert conf.mean_iou() > FEW_FRAMES_MIOU_FLOOR, conf.iou()


def test_miou_of_published_masks(client):
    scenes = scene_stream(seed=4242)
    conf, recall = ConfusionMatrix(len(CLASS_NAMES)), Recall()
    for _ in range(30):
        scene = next(scenes)
        msg = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
        _check_answer(client.request(msg), msg, scene, conf, recall)
    print('mIoU of published masks:', conf.mean_iou(), conf.iou(), 'recall', recall.value)
    assert conf.mean_iou() >= MIOU_FLOOR, conf.iou()
    assert recall.value >= RECALL_FLOOR, (recall.tp, recall.fn)


def test_non_camera_size_is_letterboxed_and_mapped_back(client):
    spec = SceneSpec(width=320, height=320)
    scene = next(scene_stream(seed=5, spec=spec))
    msg = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
    answer = client.request(msg)
    mask = mask_array(answer['mask'])
    assert mask.shape == (320, 320)
    conf = ConfusionMatrix(len(CLASS_NAMES))
    conf.add(scene.mask, mask)
    assert conf.pixel_accuracy() > 0.9


def test_label_info_is_latched(client):
    assert client.spin_until(lambda: client.label_info, 10.0)
    names = [c.class_name for c in client.label_info[0].class_map]
    assert names == list(CLASS_NAMES)


def test_compressed_input(ros_env):
    node = NodeProcess({'threads': 1, 'image_transport': 'compressed'}, ros_env,
                       namespace='/compressed_cam')
    try:
        node.wait_for_output('active: listening')
        cl = NodeClient.on_own_node('compressed_client', namespace='/compressed_cam',
                                    outputs=('mask', 'detections'), compressed=True)
        cl.connect()
        scenes = scene_stream(seed=12)
        for i, fmt in enumerate(('jpeg', 'png')):
            scene = next(scenes)
            msg = stamped(compressed_from_rgb(scene.image, fmt), next(STAMPS))
            conf = ConfusionMatrix(len(CLASS_NAMES))
            conf.add(scene.mask, mask_array(cl.request(msg)['mask']))
            assert conf.pixel_accuracy() > 0.9, fmt
        cl.close()
    finally:
        assert node.stop() == 0, node.text


def test_outputs_nobody_wants_are_not_computed():
    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.model_loader import open_model

    engine, info = open_model('', 'auto', threads=1)
    pipeline = SegmentationPipeline(engine, info, PipelineConfig())
    image = DecodedImage(next(scene_stream(1)).image, 'rgb')
    only_mask = pipeline.run(image, Wanted(mask=True, color_mask=False, overlay=False,
                                           detections=False))
    assert only_mask.mask is not None
    assert only_mask.color_mask is None and only_mask.overlay is None
    assert only_mask.regions is None
    assert set(only_mask.timings_ms) == {'preprocess', 'inference', 'postprocess'}
    both = pipeline.run_batch([image, image], [Wanted(), Wanted()])
    np.testing.assert_array_equal(both[0].mask, both[1].mask)
    np.testing.assert_array_equal(both[0].mask, only_mask.mask)
    assert set(both[0].timings_ms) == {'preprocess', 'inference', 'postprocess', 'overlay'}


def test_viewer_max_rate_caps_colour_and_overlay_but_never_masks(single_node, ros_env):
    client = NodeClient.on_own_node('viewer_client', namespace='/behaviour',
                                    outputs=('mask', 'color_mask', 'overlay'))
    target = '/behaviour/segmentation_node'
    try:
        client.connect()
        assert not set_parameter(client.node, target, 'viewer_max_rate', -1.0).successful
        assert set_parameter(client.node, target, 'viewer_max_rate', 4.0).successful
        sent = client.stream_camera([image_from_rgb(big_disc(), 'rgb8')], 20.0, 60)  # 3 s

        def answered(output: str) -> int:
            return sum(output in client.records[key].arrived_at for key in sent)
        assert answered('mask') >= 50  # every frame the node took is answered
        assert 8 <= answered('overlay') <= 16  # 4 Hz for 3 s, not 20 Hz
        assert answered('color_mask') == answered('overlay')  # both viewer images, together
    finally:
        assert set_parameter(client.node, target, 'viewer_max_rate', 0.0).successful
        client.close()


def test_detection_class_ids_are_label_info_ids_or_names(robot_node):
    client = robot_client('ids_client', ('detections',))
    try:
        client.connect()
        assert client.spin_until(lambda: client.label_info, 10.0), 'label_info not latched'
        table = {c.class_id: c.class_name for c in client.label_info[-1].class_map}
        assert table == dict(enumerate(CLASS_NAMES))
        frame = image_from_rgb(big_disc(), 'rgb8')
        answer = client.request(stamped(frame, next(STAMPS)))['detections']
        ids = {r.hypothesis.class_id for d in answer.detections for r in d.results}
        assert '1' in ids and all(table[int(i)] for i in ids), ids  # the disc, by its id
        assert set_parameter(client.node, ROBOT_TARGET, 'class_id_format', 'name').successful
        answer = client.request(stamped(frame, next(STAMPS)))['detections']
        assert 'disc' in {r.hypothesis.class_id for d in answer.detections for r in d.results}
        assert set_parameter(client.node, ROBOT_TARGET, 'class_id_format', 'id').successful
    finally:
        client.close()


def _camera_info(stamp, width: int, height: int) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.header.stamp, info.header.frame_id = stamp, 'camera'
    info.k = [500.0, 0.0, width / 2, 0.0, 500.0, height / 2, 0.0, 0.0, 1.0]
    info.p = [500.0, 0.0, width / 2, 0.0, 0.0, 500.0, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.1, -0.05, 0.0, 0.0, 0.0]
    return info


@pytest.mark.parametrize('width,height', [(640, 480), (640, 360)], ids=['4:3', 'letterboxed'])
def test_camera_info_follows_the_mask_geometry(robot_node, width, height):
    client = robot_client('info_client', ('mask',))
    infos: dict[tuple[int, int], CameraInfo] = {}
    client.node.create_subscription(
        CameraInfo, f'{ROBOT_NS}/segmentation/camera_info',
        lambda m: infos.__setitem__((m.header.stamp.sec, m.header.stamp.nanosec), m), 10)
    info_pub = client.node.create_publisher(CameraInfo, f'{ROBOT_NS}/camera_info', 10)
    try:
        client.connect()
        assert client.spin_until(lambda: info_pub.get_subscription_count() > 0, 10.0)
        # drivers send the info just before or just after the image: both are matched
        for resolution, info_first in (('input', True), ('network', False)):
            assert set_parameter(client.node, ROBOT_TARGET, 'mask_resolution',
                                 resolution).successful
            frame = stamped(image_from_rgb(big_disc(width, height), 'rgb8'), next(STAMPS))
            sent = _camera_info(frame.header.stamp, width, height)
            if info_first:
                info_pub.publish(sent)
                client.spin_until(lambda: False, 0.2)
            mask = client.request(frame)['mask']
            if not info_first:
                info_pub.publish(sent)
            key = (frame.header.stamp.sec, frame.header.stamp.nanosec)
            assert client.spin_until(lambda: key in infos, 5.0), resolution
            got = infos[key]
            assert (got.width, got.height) == (mask.width, mask.height)
            assert got.header.frame_id == 'camera'
            sx, sy = mask.width / width, mask.height / height
            if resolution == 'input':
                assert (sx, sy) == (1.0, 1.0)
            else:  # the network's 256x192, less the letterbox padding: one scale for both
                assert mask.width == 256 and sx == pytest.approx(sy, abs=0.01)
            np.testing.assert_allclose(got.k, np.array(sent.k) * [sx, sx, sx, sy, sy, sy, 1, 1, 1])
            np.testing.assert_array_equal(got.d, sent.d)
        assert set_parameter(client.node, ROBOT_TARGET, 'mask_resolution', 'input').successful
    finally:
        client.close()


def test_compressed_outputs_are_made_for_their_subscribers(robot_node):
    client = robot_client('compressed_out_client', ('mask',))
    got: dict[str, dict[tuple[int, int], CompressedImage]] = {'mask': {}, 'overlay': {}}
    for key in got:  # the overlay has no raw subscriber: the compressed one alone asks for it
        client.node.create_subscription(
            CompressedImage, f'{ROBOT_NS}/segmentation/{key}/compressed',
            lambda m, key=key: got[key].__setitem__(
                (m.header.stamp.sec, m.header.stamp.nanosec), m), 10)
    try:
        client.connect()
        frame = stamped(image_from_rgb(big_disc(), 'rgb8'), next(STAMPS))
        raw = client.request(frame)['mask']
        stamp = (frame.header.stamp.sec, frame.header.stamp.nanosec)
        assert client.spin_until(lambda: all(stamp in v for v in got.values()), 10.0)
        png, jpeg = got['mask'][stamp], got['overlay'][stamp]
        assert png.format == 'mono8; png compressed mono8'
        np.testing.assert_array_equal(decode_compressed(png).pixels, decode_image(raw).pixels)
        assert jpeg.format == 'rgb8; jpeg compressed bgr8'
        assert decode_compressed(jpeg).pixels.shape == (480, 640, 3)
    finally:
        client.close()


@pytest.mark.parametrize('encoding', ['uyvy', 'yuyv', 'bayer_rggb8'])
def test_driver_encodings_are_segmented(robot_node, encoding):
    client = robot_client(f'{encoding}_client', ('mask',))
    try:
        client.connect()
        frame = stamped(image_from_rgb(big_disc(), encoding, pad=32), next(STAMPS))
        mask = decode_image(client.request(frame)['mask']).pixels[..., 0]
        assert mask.shape == (480, 640) and (mask == 1).sum() > 10_000  # the disc was found
    finally:
        client.close()
