"""Robot integration over DDS (issue #12): malformed bursts, health, ids, camera_info, QoS.

One node process serves most tests (namespace /robot); its image subscription is made reliable
and deep through the standard qos_overrides parameters, which one test checks on the graph.
"""

from __future__ import annotations

import itertools
import time

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from image_msgs import image_from_rgb, stamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import NodeProcess, call_service
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from jetson_seg.tools.node_client import NodeClient
from jetson_seg.vision.image_conversion import decode_compressed, decode_image
from jetson_seg.training.scenes import CLASS_NAMES

NS = '/robot'
TARGET = f'{NS}/segmentation_node'
STAMPS = itertools.count(90_000)


@pytest.fixture(scope='module')
def robot_node(ros_env):
    node = NodeProcess({
        'threads': 1, 'stale_after': 1.0, 'diagnostics_period': 0.2,
        f'qos_overrides.{NS}/image.subscription.reliability': 'reliable',
        f'qos_overrides.{NS}/image.subscription.depth': 50,
        f'qos_overrides.{NS}/segmentation/color_mask.publisher.reliability': 'best_effort',
    }, ros_env, namespace=NS)
    node.wait_for_output('active: listening')
    yield node
    assert node.stop() == 0, node.text


def _client(name: str, outputs: tuple[str, ...]) -> NodeClient:
    """A client of the /robot node, whose input the overrides made reliable."""
    return NodeClient.on_own_node(name, namespace=NS, outputs=outputs, reliable=True,
                                  node_name=TARGET)


def _set(node, target: str, name: str, value) -> None:
    kind = {str: (ParameterType.PARAMETER_STRING, 'string_value'),
            float: (ParameterType.PARAMETER_DOUBLE, 'double_value')}[type(value)]
    param = Parameter(name=name, value=ParameterValue(type=kind[0], **{kind[1]: value}))
    result = call_service(node, SetParameters, f'{target}/set_parameters',
                          SetParameters.Request(parameters=[param])).results[0]
    assert result.successful, result.reason


def _transition(node, target: str, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return call_service(node, ChangeState, f'{target}/change_state', request).success


def _big_disc(width: int = 640, height: int = 480) -> np.ndarray:
    image = np.full((height, width, 3), 128, np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 5, (220, 30, 30), -1, cv2.LINE_AA)
    return image


def _wait_status(client: NodeClient, predicate, timeout: float = 20.0,
                 after: int = 0) -> DiagnosticStatus:
    """The first status of the client's node, from number `after` on, that fits."""
    found: list[DiagnosticStatus] = []

    def seen() -> bool:
        found[:] = [s for s in client.statuses[after:] if predicate(s)][:1]
        return bool(found)
    assert client.spin_until(seen, timeout), [(s.level, s.message)
                                              for s in client.statuses[-5:]]
    return found[0]


def _stream_until(client: NodeClient, predicate) -> DiagnosticStatus:
    """Send freshly stamped frames (~10 Hz) until a status of the client's node fits."""
    image = image_from_rgb(_big_disc(), 'rgb8')
    start = len(client.statuses)
    for _ in range(200):
        image.header.stamp = client.node.get_clock().now().to_msg()
        client.publisher.publish(image)
        if client.spin_until(lambda: any(predicate(s) for s in client.statuses[start:]), 0.1):
            break
    return _wait_status(client, predicate, timeout=1.0, after=start)


def _value(status: DiagnosticStatus, key: str) -> str:
    return next(kv.value for kv in status.values if kv.key == key)


def _malformed(valid: Image) -> list[Image]:
    """Ten broken variants of a valid frame, like the independent client sent (defect 1)."""
    def variant(**fields) -> Image:
        msg = Image(header=valid.header, height=valid.height, width=valid.width,
                    encoding=valid.encoding, step=valid.step, data=valid.data)
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg
    return [variant(data=bytes(valid.data)[:1000]), variant(encoding='yuv420'),
            variant(width=0), variant(height=0), variant(step=10),
            variant(width=100_000, height=100_000), variant(data=b''),
            variant(encoding='32FC1'), variant(step=valid.step - 1),
            variant(height=valid.height + 1)]


def test_valid_frames_survive_bursts_of_malformed_messages(robot_node):
    """Defect 1 over DDS: a valid frame then 10 malformed messages, 20 times; all answered."""
    client = _client('burst_client', ('mask',))
    publisher = client.node.create_publisher(  # deep and reliable: DDS itself loses nothing
        Image, f'{NS}/image', QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    try:
        client.connect()
        before = len(client.statuses)
        valid = image_from_rgb(_big_disc(), 'rgb8')
        for index in range(20):
            record = client.send(stamped(valid, next(STAMPS)))
            for msg in _malformed(valid):
                publisher.publish(msg)
            assert client.spin_until(lambda: 'mask' in record.arrived_at, 20.0), \
                f'valid frame {index + 1} of 20 was not answered'
        status = _wait_status(client, lambda s: int(_value(s, 'rejected')) >= 200,
                              after=before)
        assert status.level == DiagnosticStatus.WARN and 'malformed' in status.message
    finally:
        client.close()


def _endpoint_reliability(helper, topic: str, publishers: bool):
    """Reliability of the node's endpoint on `topic`, once discovery has shown it."""
    lookup = helper.get_publishers_info_by_topic if publishers else \
        helper.get_subscriptions_info_by_topic
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        found = [e for e in lookup(topic) if e.node_name == 'segmentation_node']
        if found:
            return found[0].qos_profile.reliability
        rclpy.spin_once(helper, timeout_sec=0.1)
    raise AssertionError(f'no segmentation_node endpoint on {topic}')


def test_qos_overrides_parameters_set_the_endpoints_qos(robot_node):
    helper = rclpy.create_node('qos_reader')
    try:
        assert _endpoint_reliability(helper, f'{NS}/image', False) == \
            ReliabilityPolicy.RELIABLE  # the parameter input_reliability says best_effort
        assert _endpoint_reliability(helper, f'{NS}/segmentation/color_mask', True) == \
            ReliabilityPolicy.BEST_EFFORT
        assert _endpoint_reliability(helper, f'{NS}/segmentation/mask', True) == \
            ReliabilityPolicy.RELIABLE  # not overridden: output_reliability's value
    finally:
        helper.destroy_node()


def test_dead_camera_warns_and_live_camera_reads_ok(robot_node):
    client = _client('health_client', ('mask',))
    try:
        client.connect()
        # nothing sent: after stale_after (1 s) the input is stale
        stale = _wait_status(client, lambda s: 'no image' in s.message,
                             after=len(client.statuses))
        assert stale.level == DiagnosticStatus.WARN and _value(stale, 'state') == 'active'
        # OK once the window holds only these fresh frames (earlier tests sent old stamps)
        alive = _stream_until(client, lambda s: s.level == DiagnosticStatus.OK and
                              float(_value(s, 'stamp_age_max_ms')) < 60_000)
        assert alive.message == 'running'
        _set(client.node, TARGET, 'expected_rate', 1000.0)  # far above what we send
        slow = _stream_until(client, lambda s: 'below expected' in s.message)
        assert slow.level == DiagnosticStatus.WARN
        _set(client.node, TARGET, 'expected_rate', 0.0)
    finally:
        client.close()


def test_detection_class_ids_are_label_info_ids_or_names(robot_node):
    client = _client('ids_client', ('detections',))
    try:
        client.connect()
        assert client.spin_until(lambda: client.label_info, 10.0), 'label_info not latched'
        table = {c.class_id: c.class_name for c in client.label_info[-1].class_map}
        assert table == dict(enumerate(CLASS_NAMES))
        frame = image_from_rgb(_big_disc(), 'rgb8')
        answer = client.request(stamped(frame, next(STAMPS)))['detections']
        ids = {r.hypothesis.class_id for d in answer.detections for r in d.results}
        assert '1' in ids and all(table[int(i)] for i in ids), ids  # the disc, by its id
        _set(client.node, TARGET, 'class_id_format', 'name')
        answer = client.request(stamped(frame, next(STAMPS)))['detections']
        assert 'disc' in {r.hypothesis.class_id for d in answer.detections for r in d.results}
        _set(client.node, TARGET, 'class_id_format', 'id')
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
    client = _client('info_client', ('mask',))
    infos: dict[tuple[int, int], CameraInfo] = {}
    client.node.create_subscription(
        CameraInfo, f'{NS}/segmentation/camera_info',
        lambda m: infos.__setitem__((m.header.stamp.sec, m.header.stamp.nanosec), m), 10)
    info_pub = client.node.create_publisher(CameraInfo, f'{NS}/camera_info', 10)
    try:
        client.connect()
        assert client.spin_until(lambda: info_pub.get_subscription_count() > 0, 10.0)
        # drivers send the info just before or just after the image: both are matched
        for resolution, info_first in (('input', True), ('network', False)):
            _set(client.node, TARGET, 'mask_resolution', resolution)
            frame = stamped(image_from_rgb(_big_disc(width, height), 'rgb8'), next(STAMPS))
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
        _set(client.node, TARGET, 'mask_resolution', 'input')
    finally:
        client.close()


def test_compressed_outputs_are_made_for_their_subscribers(robot_node):
    client = _client('compressed_out_client', ('mask',))
    got: dict[str, dict[tuple[int, int], CompressedImage]] = {'mask': {}, 'overlay': {}}
    for key in got:  # the overlay has no raw subscriber: the compressed one alone asks for it
        client.node.create_subscription(
            CompressedImage, f'{NS}/segmentation/{key}/compressed',
            lambda m, key=key: got[key].__setitem__(
                (m.header.stamp.sec, m.header.stamp.nanosec), m), 10)
    try:
        client.connect()
        frame = stamped(image_from_rgb(_big_disc(), 'rgb8'), next(STAMPS))
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


def test_diagnostics_in_every_state_and_label_info_after_each_configure(ros_env, tmp_path):
    target = '/lifecycle_health/segmentation_node'
    node = NodeProcess({'autostart': False, 'diagnostics_period': 0.2,
                        'model_path': str(tmp_path / 'missing')}, ros_env,
                       namespace='/lifecycle_health')
    client = NodeClient.on_own_node('lifecycle_health_client', namespace='/lifecycle_health',
                                    outputs=(), node_name=target)
    try:
        status = _wait_status(client, lambda s: True, timeout=60.0)
        assert status.level == DiagnosticStatus.ERROR and 'unconfigured' in status.message
        assert not _transition(client.node, target, Transition.TRANSITION_CONFIGURE)
        status = _wait_status(client, lambda s: 'missing' in s.message,
                              after=len(client.statuses))
        assert status.level == DiagnosticStatus.ERROR  # the reason, not just the state
        _set(client.node, target, 'model_path', '')
        stamps = []
        for _ in range(2):  # configure, cleanup, configure: a new latched table each time
            assert _transition(client.node, target, Transition.TRANSITION_CONFIGURE)
            assert client.spin_until(lambda: len(client.label_info) > len(stamps), 10.0)
            stamps.append(client.label_info[-1].header.stamp)
            status = _wait_status(client, lambda s: _value(s, 'state') == 'inactive',
                                  after=len(client.statuses))
            assert status.level == DiagnosticStatus.WARN
            assert _transition(client.node, target, Transition.TRANSITION_CLEANUP)
        assert (stamps[1].sec, stamps[1].nanosec) > (stamps[0].sec, stamps[0].nanosec)
        assert _transition(client.node, target, Transition.TRANSITION_CONFIGURE)
        late = NodeClient.on_own_node('late_joiner', namespace='/lifecycle_health', outputs=())
        try:  # joins after the configure: still gets the table
            assert late.spin_until(lambda: late.label_info, 10.0)
        finally:
            late.close()
    finally:
        client.close()
        assert node.stop() == 0, node.text


@pytest.mark.parametrize('encoding', ['uyvy', 'yuyv', 'bayer_rggb8'])
def test_driver_encodings_are_segmented(robot_node, encoding):
    client = _client(f'{encoding}_client', ('mask',))
    try:
        client.connect()
        frame = stamped(image_from_rgb(_big_disc(), encoding, pad=32), next(STAMPS))
        mask = decode_image(client.request(frame)['mask']).pixels[..., 0]
        assert mask.shape == (480, 640) and (mask == 1).sum() > 10_000  # the disc was found
    finally:
        client.close()


def test_one_dead_camera_of_several_is_named(ros_env):
    target = '/two_cams/segmentation_node'
    node = NodeProcess({'threads': 1, 'cameras': '[front, rear]', 'stale_after': 1.0,
                        'diagnostics_period': 0.2}, ros_env, namespace='/two_cams')
    front = NodeClient.on_own_node('front_client', namespace='/two_cams/front',
                                   outputs=('mask',), node_name=target)
    try:
        node.wait_for_output('active: listening')
        front.connect()
        status = _stream_until(front, lambda s: 'rear' in s.message)  # rear is silent
        assert status.level == DiagnosticStatus.WARN and 'no image from rear' in status.message
        assert 'front' not in status.message
    finally:
        front.close()
        assert node.stop() == 0, node.text
