"""SIGINT/SIGTERM at any moment of the node's life ends it cleanly.

Clean means: exit code 0, no traceback, and none of the Fast DDS shared-memory segments the
node had open is left behind unused. The segments are read from /proc while the node runs, and
one still on disk afterwards is a leak only if no living process uses it, so peers (this test)
and other processes on the machine creating or removing theirs cannot disturb the check.
"""

from __future__ import annotations

import signal
import time

import pytest
import rclpy
from image_msgs import image_from_rgb, stamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from ros_harness import NodeProcess
from shm import fastdds_files, leaked, segments_of

from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import scene_stream

#: engine:=tf imports TensorFlow while configuring: seconds of loading to land a signal in
SLOW_LOAD = {'threads': 1, 'engine': 'tf'}


def _request_transition(helper, target: str, transition: int) -> None:
    """Ask for a lifecycle transition without waiting for the answer (the node may exit)."""
    client = helper.create_client(ChangeState, f'{target}/change_state')
    assert client.wait_for_service(timeout_sec=30.0)
    client.call_async(ChangeState.Request(transition=Transition(id=transition)))
    rclpy.spin_once(helper, timeout_sec=0.05)


def _stream(client: NodeClient, seconds: float) -> None:
    scene = next(scene_stream(11))
    end, index = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        client.publisher.publish(stamped(image_from_rgb(scene.image, 'rgb8'), 70_000 + index))
        index += 1
        rclpy.spin_once(client.node, timeout_sec=0.03)


def _stop_with(node: NodeProcess, signum: int, before: set[str], meanwhile=None) -> None:
    """Send `signum` now; the node must exit 0, print no traceback and leave no segment.

    `meanwhile()` runs between the signal and the exit (frames that keep coming).
    """
    own = segments_of(node.proc.pid) - before  # created by the node, not by its peers
    node.proc.send_signal(signum)
    if meanwhile is not None:
        meanwhile()
    code = node.proc.wait(timeout=30)
    node.stop()
    assert code == 0, node.text[-3000:]
    assert 'Traceback' not in node.text and 'Failed to complete transition' not in node.text, \
        node.text[-3000:]
    assert f'stopping ({signal.Signals(signum).name})' in node.text, node.text[-3000:]
    left = leaked(own)
    assert not left, f'segments left after {signal.Signals(signum).name}: {sorted(left)}'


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_while_loading_the_model(ros_env, signum):
    before = fastdds_files()
    node = NodeProcess(SLOW_LOAD, ros_env, namespace='/sig_load')
    node.wait_for_output('configuring: loading the model')
    _stop_with(node, signum, before)
    assert 'active: listening' not in node.text  # it was stopped before the model was in


def test_signal_during_a_configure_asked_for_by_a_manager(ros_env):
    before = fastdds_files()
    node = NodeProcess({**SLOW_LOAD, 'autostart': False}, ros_env, namespace='/sig_manager')
    helper = rclpy.create_node('signal_manager')
    try:
        _request_transition(helper, '/sig_manager/segmentation_node',
                            Transition.TRANSITION_CONFIGURE)
        node.wait_for_output('configuring: loading the model')
        _stop_with(node, signal.SIGTERM, before)
        assert 'configured:' not in node.text  # it was stopped while configuring
    finally:
        helper.destroy_node()


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_while_active_and_frames_arrive(ros_env, signum):
    before = fastdds_files()
    node = NodeProcess({'threads': 1}, ros_env, namespace='/sig_active')
    client = NodeClient.on_own_node('signal_active_client', namespace='/sig_active',
                                    outputs=('mask',))
    try:
        node.wait_for_output('active: listening')
        client.connect()
        _stream(client, 1.0)
        _stop_with(node, signum, before, meanwhile=lambda: _stream(client, 0.5))
    finally:
        client.close()


def test_signal_while_deactivating(ros_env):
    before = fastdds_files()
    node = NodeProcess({'threads': 1}, ros_env, namespace='/sig_deactivate')
    helper = rclpy.create_node('signal_deactivator')
    try:
        node.wait_for_output('active: listening')
        _request_transition(helper, '/sig_deactivate/segmentation_node',
                            Transition.TRANSITION_DEACTIVATE)
        _stop_with(node, signal.SIGINT, before)
    finally:
        helper.destroy_node()


def test_signal_while_unconfigured(ros_env):
    before = fastdds_files()
    node = NodeProcess({'threads': 1, 'autostart': False}, ros_env, namespace='/sig_idle')
    helper = rclpy.create_node('signal_idle')
    try:
        client = helper.create_client(ChangeState, '/sig_idle/segmentation_node/change_state')
        assert client.wait_for_service(timeout_sec=30.0)
        _stop_with(node, signal.SIGTERM, before)
    finally:
        helper.destroy_node()
