"""Input the node must survive or match, over DDS.

Malformed messages and bytes, bursts of them between valid frames, reliable publishers, and QoS
set by qos_overrides parameters.
"""

from __future__ import annotations

import itertools
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from image_msgs import image_from_rgb, mask_array, stamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import ROBOT_NS, big_disc, robot_client, status_value, wait_status
from sensor_msgs.msg import Image

from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import scene_stream

STAMPS = itertools.count(90_000)


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
    assert mask_array(answer['mask']).shape == (480, 640)
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
    assert mask_array(answer['mask']).shape == (480, 640)
    assert client.spin_until(
        lambda: int(client.figures().get('rejected.malformed', 0)) >= 1, 5.0), client.figures()


def test_reliable_publisher_is_answered(ros_env, raw_node):
    cl = NodeClient.on_own_node('reliable_client', reliable=True)
    try:
        cl.connect()
        scene = next(scene_stream(seed=31))
        msg = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
        assert mask_array(cl.request(msg)['mask']).shape == (480, 640)
    finally:
        cl.close()


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
    client = robot_client('burst_client', ('mask',))
    publisher = client.node.create_publisher(  # deep and reliable: DDS itself loses nothing
        Image, f'{ROBOT_NS}/image', QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    try:
        client.connect()
        before = len(client.statuses)
        valid = image_from_rgb(big_disc(), 'rgb8')
        for index in range(20):
            record = client.send(stamped(valid, next(STAMPS)))
            for msg in _malformed(valid):
                publisher.publish(msg)
            assert client.spin_until(lambda: 'mask' in record.arrived_at, 20.0), \
                f'valid frame {index + 1} of 20 was not answered'
        status = wait_status(client, lambda s: int(status_value(s, 'rejected')) >= 200,
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
        assert _endpoint_reliability(helper, f'{ROBOT_NS}/image', False) == \
            ReliabilityPolicy.RELIABLE  # the parameter input_reliability says best_effort
        assert _endpoint_reliability(helper, f'{ROBOT_NS}/segmentation/color_mask', True) == \
            ReliabilityPolicy.BEST_EFFORT
        assert _endpoint_reliability(helper, f'{ROBOT_NS}/segmentation/mask', True) == \
            ReliabilityPolicy.RELIABLE  # not overridden: output_reliability's value
    finally:
        helper.destroy_node()
