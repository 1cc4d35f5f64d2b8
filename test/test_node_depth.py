"""Objects in 3D over DDS (issue 26): an RGB-D stream in, detections_3d and a labelled cloud out.

Generated RGB-D frames (training/depth_scenes.py: objects on tilted planes in front of a wall,
depth noise, flying pixels at the edges, holes) go to one node process as a colour image, a
registered depth image (16UC1 millimetres or 32FC1 metres) and its camera_info; its 3D boxes are
scored against the true ones, its cloud against the same geometry run here on its own mask.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
from image_msgs import compressed_depth, image_from_rgb
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import NodeProcess, call_service, status_value, wait_status
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from jetson_seg.ros.interface import (CLIENT_OUTPUT_QOS, COMPRESSED_DEPTH, DEPTH,
                                      DEPTH_CAMERA_INFO, DEPTH_OUTPUTS,
                                      client_input_qos, set_stamp, stamp_key)
from jetson_seg.ros.messages import class_index
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.depth_scenes import (DepthScene, DepthSceneSpec, box_errors,
                                              depth_scene_stream, match_regions)
from jetson_seg.training.scenes import CLASS_NAMES
from jetson_seg.vision.camera_model import CameraModel
from jetson_seg.vision.depth import POINT_DTYPE, POINT_FIELDS, labelled_points
from jetson_seg.vision.compressed_depth import decode_compressed_depth
from jetson_seg.vision.image_conversion import DepthImage, decode_depth, decode_image

NAMESPACE = '/depth3d'
STRIDE = 2
#: Stamps of this module's frames (s), far from the probe frames'.
STAMPS = itertools.count(5000)


def depth_msg(metres: np.ndarray, encoding: str) -> Image:
    """A depth image as REP 117 has it: 16UC1 millimetres with 0, or 32FC1 metres with NaN."""
    if encoding == '16UC1':
        values = np.where(np.isnan(metres), 0, np.round(metres * 1000)).astype('<u2')
    else:
        values = metres.astype('<f4')
    msg = Image(height=values.shape[0], width=values.shape[1], encoding=encoding,
                is_bigendian=0, step=values.shape[1] * values.itemsize)
    msg.data = values.tobytes()
    return msg


def camera_info(camera: CameraModel) -> CameraInfo:
    info = CameraInfo(width=camera.width, height=camera.height, distortion_model='plumb_bob')
    info.k = [camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0]
    info.p = [camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


@dataclass
class Answer:
    """What the node sent for one frame."""

    mask: np.ndarray
    detections: list  # Detection2D
    detections_3d: list | None  # Detection3D, None if none came
    points: PointCloud2 | None


@dataclass
class RgbdClient:
    """A NodeClient for the 2D outputs plus the depth inputs and the 3D outputs."""

    client: NodeClient
    namespace: str = NAMESPACE
    compressed: bool = False  # depth goes to depth/compressedDepth (depth.transport)
    three_d: dict[str, dict[int, object]] = field(default_factory=dict)
    subscriptions: list = field(default_factory=list)

    def __post_init__(self) -> None:
        node = self.client.node
        depth = COMPRESSED_DEPTH if self.compressed else DEPTH
        self.depth_pub = node.create_publisher(depth.type, depth.under(self.namespace),
                                               client_input_qos(True))
        self.info_pub = node.create_publisher(DEPTH_CAMERA_INFO.type,
                                              DEPTH_CAMERA_INFO.under(self.namespace),
                                              client_input_qos(True))
        for key, topic in DEPTH_OUTPUTS.items():
            got = self.three_d.setdefault(key, {})
            self.subscriptions.append(node.create_subscription(
                topic.type, topic.under(self.namespace),
                lambda msg, got=got: got.__setitem__(stamp_key(msg.header.stamp), msg),
                CLIENT_OUTPUT_QOS))

    def send_depth(self, metres: np.ndarray, camera: CameraModel, key: int,
                   encoding: str = '16UC1', msg: Image | None = None,
                   info: CameraInfo | None = None) -> None:
        info = camera_info(camera) if info is None else info
        msg = depth_msg(metres, encoding) if msg is None else msg
        for header in (info.header, msg.header):
            set_stamp(header, key)
            header.frame_id = 'camera'
        self.info_pub.publish(info)
        self.depth_pub.publish(msg)

    def send_colour(self, scene: DepthScene, key: int):
        msg = image_from_rgb(scene.image, 'rgb8')
        set_stamp(msg.header, key)
        msg.header.frame_id = 'camera'
        return self.client.send(msg)

    def answer(self, record, with_3d: bool = True, timeout: float = 10.0) -> Answer:
        done = (lambda: len(record.arrived_at) == 2 and
                all(record.key in got for got in self.three_d.values())) if with_3d else \
            (lambda: len(record.arrived_at) == 2)
        assert self.client.spin_until(done, timeout), (record.key, sorted(record.arrived_at))
        d3, points = (self.three_d[k].get(record.key) for k in ('detections_3d', 'points'))
        return Answer(decode_image(record.answers['mask']).pixels[..., 0],
                      list(record.answers['detections'].detections),
                      None if d3 is None else list(d3.detections), points)

    def exchange(self, scene: DepthScene, encoding: str = '16UC1') -> Answer:
        """Depth first (as a driver often sends it), then the colour frame; the answers."""
        key = next(STAMPS) * 1_000_000_000
        self.send_depth(scene.depth, scene.depth_camera, key, encoding)
        self.client.spin_for(0.02)
        return self.answer(self.send_colour(scene, key))


def _rgbd_node(ros_env, namespace: str, transport: str):
    """A node serving RGB-D frames in `namespace`, and its client (a generator fixture)."""
    node = NodeProcess({'threads': 1, 'tracking.min_hits': 1, 'diagnostics_period': 0.2,
                        'depth.point_stride': STRIDE, 'depth.transport': transport}, ros_env,
                       namespace=namespace)
    client = NodeClient.on_own_node('depth_client', namespace=namespace,
                                    outputs=('mask', 'detections'),
                                    node_name=f'{namespace}/segmentation_node')
    try:
        node.wait_for_output('active: listening')
        client.connect(node_proc=node)
        rgbd = RgbdClient(client, namespace, transport == 'compressedDepth')
        topics = [client.node.resolve_topic_name(t.under(namespace))
                  for t in DEPTH_OUTPUTS.values()]
        assert client.spin_until(lambda: rgbd.depth_pub.get_subscription_count() > 0 and
                                 all(client.node.count_publishers(t) for t in topics), 30.0)
        yield rgbd
    finally:
        client.close()
        assert node.stop() == 0, node.text


@pytest.fixture(scope='module')
def rgbd(ros_env):
    yield from _rgbd_node(ros_env, NAMESPACE, 'raw')


def _errors(scene: DepthScene, answer: Answer) -> list:
    """box_errors of each true object the node found, matched through its 2D detection."""
    boxes = []
    for det in answer.detections:
        cx, cy, w, h = (det.bbox.center.position.x, det.bbox.center.position.y,
                        det.bbox.size_x, det.bbox.size_y)
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2,
                      class_index(det.results[0].hypothesis.class_id, CLASS_NAMES)))
    by_id = {det.id: det for det in answer.detections_3d}
    found = []
    for truth, index in match_regions(boxes, scene.objects).items():
        located = by_id.get(answer.detections[index].id)
        if located is not None:
            c, s = located.bbox.center.position, located.bbox.size
            found.append(box_errors((c.x, c.y, c.z), (s.x, s.y, s.z), scene.objects[truth]))
    return found


def _check_answer(scene: DepthScene, answer: Answer, depth: DepthImage) -> None:
    """3D detections carry their 2D twins' ids, classes and scores; the cloud is the mask's."""
    twins = {det.id: det for det in answer.detections}
    assert answer.detections_3d and all(det.id for det in answer.detections_3d)
    for det in answer.detections_3d:
        twin = twins[det.id]
        assert det.results[0].hypothesis.class_id == twin.results[0].hypothesis.class_id
        assert det.results[0].hypothesis.score == pytest.approx(
            twin.results[0].hypothesis.score)
        assert det.header.frame_id == 'camera'
    cloud = answer.points
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == list(POINT_FIELDS)
    assert (cloud.height, cloud.point_step, cloud.is_dense) == (1, 16, True)
    points = np.frombuffer(bytes(cloud.data), POINT_DTYPE)
    expected = labelled_points(answer.mask, depth, scene.depth_camera, STRIDE)
    np.testing.assert_array_equal(points, expected)
    assert set(np.unique(points['label'])) <= {1, 2, 3}


def _score(rgbd: RgbdClient, spec: DepthSceneSpec, seed: int, frames: int,
           encodings: tuple[str, ...]) -> np.ndarray:
    """(depth, lateral, size) errors of every located object over `frames` frames."""
    errors = []
    stream = depth_scene_stream(seed, spec)
    for index in range(frames):
        scene, encoding = next(stream), encodings[index % len(encodings)]
        answer = rgbd.exchange(scene, encoding)
        _check_answer(scene, answer, decode_depth(depth_msg(scene.depth, encoding)))
        errors += [(e.depth, e.lateral, e.size) for e in _errors(scene, answer)]
    return np.array(errors)


def _print_shares(label: str, errors: np.ndarray) -> None:
    """The figures the README quotes (pytest -s shows them)."""
    print(f'{label}: {len(errors)} objects; within depth 2% '
          f'{(errors[:, 0] <= 0.02).mean():.0%}, 1 cm/m {(errors[:, 1] <= 0.01).mean():.0%}, '
          f'size 5% {(errors[:, 2] <= 0.05).mean():.0%}; worst {errors.max(0)}')


def test_centres_and_sizes_against_the_truth_16uc1_and_32fc1(rgbd):
    errors = _score(rgbd, DepthSceneSpec(), 26, 24, ('16UC1', '32FC1'))
    assert len(errors) >= 50
    _print_shares('full resolution', errors)
    assert (errors[:, 0] <= 0.02).all()
    assert (errors[:, 1] <= 0.01).mean() >= 0.95
    assert (errors[:, 2] <= 0.05).mean() >= 0.9  # 97% measured (72% before depth.grow_px)
    assert (errors[:, 2] <= 0.10).all()  # worst 5.5% (27%)


def test_half_resolution_depth(rgbd):
    errors = _score(rgbd, DepthSceneSpec(depth_scale=0.5), 27, 12, ('16UC1', '32FC1'))
    assert len(errors) >= 25
    _print_shares('half resolution', errors)
    assert (errors[:, 0] <= 0.02).all()
    assert (errors[:, 1] <= 0.01).mean() >= 0.9


def test_a_frame_without_depth_keeps_its_2d_outputs_and_late_depth_is_paired(rgbd):
    scene = next(depth_scene_stream(28))
    alone = next(STAMPS) * 1_000_000_000
    answer = rgbd.answer(rgbd.send_colour(scene, alone), with_3d=False)
    assert answer.detections and answer.mask.any()
    rgbd.client.spin_for(0.5)
    assert all(alone not in got for got in rgbd.three_d.values())
    # the depth image comes after the frame was answered: the frame waited for it
    late = next(STAMPS) * 1_000_000_000
    record = rgbd.send_colour(scene, late)
    rgbd.answer(record, with_3d=False)
    rgbd.client.spin_for(0.2)
    assert all(late not in got for got in rgbd.three_d.values())
    rgbd.send_depth(scene.depth, scene.depth_camera, late, '32FC1')
    answer = rgbd.answer(record)
    _check_answer(scene, answer, decode_depth(depth_msg(scene.depth, '32FC1')))


def _set_stride(rgbd: RgbdClient, value: int):
    param = Parameter(name='depth.point_stride', value=ParameterValue(
        type=ParameterType.PARAMETER_INTEGER, integer_value=value))
    return call_service(rgbd.client.node, SetParameters,
                        f'{NAMESPACE}/segmentation_node/set_parameters',
                        SetParameters.Request(parameters=[param])).results[0]


def test_point_stride_is_set_at_run_time(rgbd):
    scene = next(depth_scene_stream(31))
    refused = _set_stride(rgbd, 0)
    assert not refused.successful and 'depth.point_stride' in refused.reason
    assert _set_stride(rgbd, 4).successful
    try:
        answer = rgbd.exchange(scene)
        points = np.frombuffer(bytes(answer.points.data), POINT_DTYPE)
        expected = labelled_points(answer.mask, decode_depth(depth_msg(scene.depth, '16UC1')),
                                   scene.depth_camera, 4)
        np.testing.assert_array_equal(points, expected)
    finally:
        assert _set_stride(rgbd, STRIDE).successful


def _malformed(scene: DepthScene) -> dict[str, Image]:
    """A depth image per reason it is rejected for (the last only once paired with its frame)."""
    good = depth_msg(scene.depth, '16UC1')
    cut = depth_msg(scene.depth, '16UC1')
    cut.data = bytes(good.data)[:1000]
    short = depth_msg(scene.depth, '16UC1')
    short.step = 100
    empty = Image(height=0, width=640, encoding='16UC1', step=1280)
    other = depth_msg(scene.depth[:100, :100], '16UC1')  # square: not this camera's view
    return {'unsupported_depth_encoding': Image(height=2, width=2, encoding='rgb8', step=6,
                                                data=bytes(12)),
            'truncated': cut, 'bad_step': short, 'zero_size': empty, 'depth_mismatch': other}


def test_malformed_depth_is_rejected_counted_and_the_node_goes_on(rgbd):
    scene = next(depth_scene_stream(29))
    sent = _malformed(scene)
    uncalibrated = camera_info(scene.depth_camera)
    uncalibrated.k = [0.0] * 9
    sent['no_camera_info'] = depth_msg(scene.depth, '16UC1')
    for reason, msg in sent.items():
        key = next(STAMPS) * 1_000_000_000
        rgbd.send_depth(scene.depth, scene.depth_camera, key, msg=msg,
                        info=uncalibrated if reason == 'no_camera_info' else None)
        answer = rgbd.answer(rgbd.send_colour(scene, key), with_3d=False)
        assert answer.detections, reason  # the frame itself is answered in 2D
    status = wait_status(rgbd.client, lambda s: all(
        any(kv.key == f'depth_rejected.{r}' for kv in s.values) for r in sent))
    for reason in sent:
        assert int(status_value(status, f'depth_rejected.{reason}')) >= 1, reason
    start = len(rgbd.client.statuses)
    warned = wait_status(rgbd.client, lambda s: 'depth images rejected' in s.message,
                         after=max(0, start - 10))
    assert warned.level == b'\x01'
    # the node goes on: the next good pair gets its 3D outputs, and the warning ends
    used = int(status_value(status, 'depth_used'))
    _check_answer(scene, rgbd.exchange(scene), decode_depth(depth_msg(scene.depth, '16UC1')))
    later = wait_status(rgbd.client, lambda s: int(status_value(s, 'depth_used')) > used and
                        s.level == b'\x00', after=len(rgbd.client.statuses))
    assert int(status_value(later, 'depth_rejected')) >= len(sent)


@pytest.fixture(scope='module')
def compressed_rgbd(ros_env):
    yield from _rgbd_node(ros_env, f'{NAMESPACE}_compressed', 'compressedDepth')


@pytest.mark.parametrize('encoding, codec', [('16UC1', 'png'), ('16UC1', 'rvl'),
                                             ('32FC1', 'png'), ('32FC1', 'rvl')])
def test_compressed_depth_is_located_like_the_depth_it_carries(compressed_rgbd, encoding,
                                                               codec):
    """depth.transport compressedDepth: the plugin's png and rvl, millimetres and metres."""
    scene = next(depth_scene_stream(32))
    msg = compressed_depth(scene.depth, encoding, codec)
    key = next(STAMPS) * 1_000_000_000
    compressed_rgbd.send_depth(scene.depth, scene.depth_camera, key, msg=msg)
    compressed_rgbd.client.spin_for(0.02)
    answer = compressed_rgbd.answer(compressed_rgbd.send_colour(scene, key))
    carried = decode_compressed_depth(msg)
    if encoding == '16UC1':  # lossless: the raw image's values
        raw = decode_depth(depth_msg(scene.depth, '16UC1'))
        np.testing.assert_array_equal(carried.values, raw.values)
    _check_answer(scene, answer, carried)
    errors = np.array([(e.depth, e.lateral) for e in _errors(scene, answer)])
    assert len(errors) >= 2 and (errors[:, 0] <= 0.02).all() and (errors[:, 1] <= 0.01).all()


def test_malformed_compressed_depth_is_rejected_and_counted(compressed_rgbd):
    scene = next(depth_scene_stream(33))
    bad = compressed_depth(scene.depth, '16UC1', 'png')
    bad.data = bytes(bad.data)[:12] + b'not a png' * 10
    key = next(STAMPS) * 1_000_000_000
    compressed_rgbd.send_depth(scene.depth, scene.depth_camera, key, msg=bad)
    assert compressed_rgbd.answer(compressed_rgbd.send_colour(scene, key),
                                  with_3d=False).detections
    status = wait_status(compressed_rgbd.client, lambda s: any(
        kv.key == 'depth_rejected.corrupt_compressed' for kv in s.values))
    assert int(status_value(status, 'depth_rejected.corrupt_compressed')) >= 1


def test_nothing_3d_is_made_while_nobody_subscribes(rgbd):
    """Runs last: it drops the module's 3D subscriptions."""
    node = rgbd.client.node
    for subscription in rgbd.subscriptions:
        node.destroy_subscription(subscription)
    topics = [node.resolve_topic_name(t.under(NAMESPACE)) for t in DEPTH_OUTPUTS.values()]
    assert rgbd.client.spin_until(lambda: not any(node.count_subscribers(t) for t in topics),
                                  10.0)
    rgbd.client.spin_for(0.5)  # the node's publishers see them go too
    before = wait_status(rgbd.client, lambda s: True, after=len(rgbd.client.statuses))
    scene = next(depth_scene_stream(30))
    for _ in range(3):
        key = next(STAMPS) * 1_000_000_000
        rgbd.send_depth(scene.depth, scene.depth_camera, key)
        assert rgbd.answer(rgbd.send_colour(scene, key), with_3d=False).detections
    after = wait_status(rgbd.client, lambda s: True, after=len(rgbd.client.statuses))
    assert status_value(after, 'depth_used') == status_value(before, 'depth_used')


def test_messages_of_an_empty_cloud_and_of_names_for_class_ids():
    """No objects: a valid empty cloud; class_id_format name carries over to the 3D boxes."""
    from std_msgs.msg import Header

    from jetson_seg.ros.messages import detections_3d_msg, point_cloud_msg
    from jetson_seg.vision.depth import Object3D

    empty = point_cloud_msg(Header(), np.empty(0, POINT_DTYPE))
    assert (empty.width, empty.row_step, len(empty.data), len(empty.fields)) == (0, 0, 0, 4)
    found = Object3D(region=1, class_id=2, score=0.75, center=(0.1, -0.2, 1.5),
                     size=(0.3, 0.2, 0.05), points=400, valid=0.9)
    msg = detections_3d_msg(Header(frame_id='cam'), [found], CLASS_NAMES, ['', '7'])
    (det,) = msg.detections
    assert (det.id, det.results[0].hypothesis.class_id) == ('7', 'rectangle')
    assert det.results[0].hypothesis.score == pytest.approx(0.75)
    center = det.bbox.center
    assert (center.position.x, center.position.y, center.position.z) == (0.1, -0.2, 1.5)
    assert center.orientation.w == 1.0 and det.results[0].pose.pose == center
    assert (det.bbox.size.x, det.bbox.size.y, det.bbox.size.z) == (0.3, 0.2, 0.05)
