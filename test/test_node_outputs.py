"""The segmentation node in its own process, driven over Fast DDS by a client in this one."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from image_msgs import compressed_from_rgb, image_from_rgb, stamped
from ros_harness import NodeProcess

from jetson_seg.vision.image_conversion import decode_image
from jetson_seg.ros.messages import class_index, detection_boxes
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.metrics import ConfusionMatrix, match_boxes
from jetson_seg.training.scenes import CLASS_COLORS, CLASS_NAMES, SceneSpec, scene_stream

#: Pixel-level mIoU the published masks must reach on generated scenes (README states the
#: held-out figure of the model itself; this is the floor for a handful of frames).
MIOU_FLOOR = 0.88  # served as mixed INT8 (auto) the default model reaches 0.912 here
FEW_FRAMES_MIOU_FLOOR = 0.65  # 3 frames per encoding, mono8 too: 0.75-0.96 seen
MIN_BOX_AREA = 400  # ground-truth boxes this large (px at 640x480) count for recall
RECALL_FLOOR = 0.85  # (0.905 reached) of those, found with the right class and box IoU >= 0.5
STAMPS = itertools.count(1)  # every frame of the module gets its own stamp


def _mask_array(msg) -> np.ndarray:
    assert msg.encoding == 'mono8'
    return decode_image(msg).pixels[..., 0]


def _rgb_array(msg) -> np.ndarray:
    assert msg.encoding == 'rgb8'
    return decode_image(msg).pixels


def _boxes(det_array) -> list[tuple]:
    return [(*box[:4], class_index(box[4], CLASS_NAMES)) for box in detection_boxes(det_array)]


@pytest.fixture(scope='module')
def raw_node(ros_env):
    node = NodeProcess({'threads': 1}, ros_env)
    node.wait_for_output('active: listening')
    yield node
    assert node.stop() == 0, node.text


@pytest.fixture(scope='module')
def client(raw_node):
    cl = NodeClient.on_own_node('test_client', node_name='/segmentation_node')
    cl.connect()
    yield cl
    cl.close()


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
    mask = _mask_array(answer['mask'])
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
    mask = _mask_array(answer['mask'])
    assert mask.shape == (320, 320)
    conf = ConfusionMatrix(len(CLASS_NAMES))
    conf.add(scene.mask, mask)
    assert conf.pixel_accuracy() > 0.9


def test_label_info_is_latched(client):
    assert client.spin_until(lambda: client.label_info, 10.0)
    names = [c.class_name for c in client.label_info[0].class_map]
    assert names == list(CLASS_NAMES)


def test_malformed_frames_are_rejected_and_node_answers_next(client, raw_node):
    scene = next(scene_stream(seed=77))
    bad = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
    bad.data = bytes(bad.data)[:1000]  # truncated
    client.publisher.publish(bad)
    odd = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
    odd.encoding = 'yuv422_weird'
    client.publisher.publish(odd)
    client.spin_until(lambda: False, 0.5)
    good = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
    answer = client.request(good)
    assert _mask_array(answer['mask']).shape == (480, 640)
    raw_node.wait_for_output('rejected image', timeout=10)
    assert client.spin_until(lambda: int(client.figures().get('rejected', 0)) >= 1, 5.0)


def test_bytes_that_are_no_image_are_rejected_as_malformed(client, raw_node):
    """Raw images are read from their CDR bytes: cut bytes are counted, the node goes on."""
    from rclpy.serialization import serialize_message

    scene = next(scene_stream(seed=78))
    whole = serialize_message(stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS)))
    client.publisher.publish(whole[:40])  # ends inside the encoding string
    client.spin_until(lambda: False, 0.5)
    answer = client.request(stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS)))
    assert _mask_array(answer['mask']).shape == (480, 640)
    assert client.spin_until(
        lambda: int(client.figures().get('rejected.malformed', 0)) >= 1, 5.0), client.figures()


def test_reliable_publisher_is_answered(ros_env, raw_node):
    cl = NodeClient.on_own_node('reliable_client', reliable=True)
    try:
        cl.connect()
        scene = next(scene_stream(seed=31))
        msg = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
        assert _mask_array(cl.request(msg)['mask']).shape == (480, 640)
    finally:
        cl.close()


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
            conf.add(scene.mask, _mask_array(cl.request(msg)['mask']))
            assert conf.pixel_accuracy() > 0.9, fmt
        cl.close()
    finally:
        assert node.stop() == 0, node.text
