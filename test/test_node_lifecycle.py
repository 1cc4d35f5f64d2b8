"""Lifecycle and parameters over DDS.

Runtime parameters applied or refused with the reason, a failed configure fixed by a parameter,
activate/deactivate cycles, a clean stop, and a camera name that is no ROS name.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import rclpy
from image_msgs import image_from_rgb, stamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from ros_harness import NodeProcess, big_disc, call_service, set_parameter
from shm import fastdds_files, leaked, segments_of

from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import CLASS_COLORS

STAMPS = itertools.count(60_000)


def test_parameters_refused_with_reason_or_applied_at_runtime(single_node, ros_env):
    client = NodeClient.on_own_node('param_client', namespace='/behaviour',
                                    outputs=('mask', 'overlay'))
    target = '/behaviour/segmentation_node'
    try:
        client.connect()
        bad = set_parameter(client.node, target, 'overlay_alpha', 1.7)
        assert not bad.successful and 'overlay_alpha' in bad.reason
        got = call_service(client.node, GetParameters, f'{target}/get_parameters',
                           GetParameters.Request(names=['overlay_alpha']))
        assert got.values[0].double_value == 0.5  # old value kept
        image = big_disc()
        palette = np.array(CLASS_COLORS, np.uint8)
        for alpha in (0.0, 1.0):
            assert set_parameter(client.node, target, 'overlay_alpha', alpha).successful
            answer = client.request(stamped(image_from_rgb(image, 'rgb8'), next(STAMPS)))
            overlay = np.frombuffer(answer['overlay'].data, np.uint8).reshape(480, 640, 3)
            mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(480, 640)
            assert (mask == 1).sum() > 10_000  # the disc was found
            expected = image.copy()
            if alpha == 1.0:  # objects fully in their class colour, background untouched
                expected[mask > 0] = palette[mask[mask > 0]]
            np.testing.assert_array_equal(overlay, expected)
        assert set_parameter(client.node, target, 'overlay_alpha', 0.5).successful
    finally:
        client.close()


def test_lifecycle_bad_model_fails_configure_then_fixed_configure_works(ros_env, tmp_path):
    node = NodeProcess({'autostart': False, 'model_path': str(tmp_path / 'missing')}, ros_env,
                       namespace='/lifecycle')
    helper = rclpy.create_node('lifecycle_helper')
    target = '/lifecycle/segmentation_node'
    try:
        state = call_service(helper, GetState, f'{target}/get_state', GetState.Request())
        assert state.current_state.label == 'unconfigured'
        configure = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE))
        assert not call_service(helper, ChangeState, f'{target}/change_state', configure).success
        node.wait_for_output(str(tmp_path / 'missing'), timeout=10)
        param = Parameter(name='model_path', value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=''))
        assert call_service(helper, SetParameters, f'{target}/set_parameters',
                            SetParameters.Request(parameters=[param])).results[0].successful
        assert call_service(helper, ChangeState, f'{target}/change_state', configure).success
        activate = ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE))
        assert call_service(helper, ChangeState, f'{target}/change_state', activate).success
        node.wait_for_output('active: listening', timeout=10)
        cycle_activation(helper, target, node.proc.pid, cycles=100)
    finally:
        helper.destroy_node()
        assert node.stop() == 0, node.text


def _proc_status(pid: int, field: str) -> int:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise KeyError(field)


def cycle_activation(helper, target: str, pid: int, cycles: int) -> None:
    """Deactivate/activate many times: threads and memory must come back to where they were."""
    def change(transition: int) -> None:
        request = ChangeState.Request(transition=Transition(id=transition))
        assert call_service(helper, ChangeState, f'{target}/change_state', request).success

    change(Transition.TRANSITION_DEACTIVATE)
    change(Transition.TRANSITION_ACTIVATE)
    threads, rss = _proc_status(pid, 'Threads'), _proc_status(pid, 'VmRSS')
    for _ in range(cycles):
        change(Transition.TRANSITION_DEACTIVATE)
        change(Transition.TRANSITION_ACTIVATE)
    assert _proc_status(pid, 'Threads') <= threads, 'threads leaked by activate/deactivate'
    assert _proc_status(pid, 'VmRSS') - rss < 20 * 1024, 'memory grew by > 20 MiB'


def test_clean_shutdown_leaves_no_shared_memory_segments(ros_env):
    before = fastdds_files()
    # A domain of its own: no peer shares its segments.
    alone = {**ros_env, 'ROS_DOMAIN_ID': str((int(ros_env['ROS_DOMAIN_ID']) + 50) % 230)}
    node = NodeProcess({'threads': 1}, alone, namespace='/shutdown')
    node.wait_for_output('active: listening')
    own = segments_of(node.proc.pid) - before
    assert own, 'the node should have created Fast DDS segments'
    assert node.stop() == 0, node.text
    # Other processes on the machine may create segments meanwhile: only the node's count.
    assert not leaked(own), f'stale segments after a clean stop: {sorted(leaked(own))}'
    assert 'Traceback' not in node.text


def test_a_camera_name_that_is_no_ros_name_is_refused_with_the_reason(ros_env):
    """cameras:=[a//b] used to pass and break configure with nothing logged (issue 21, item 9)."""
    started = NodeProcess({'autostart': False, 'cameras': '[a//b]'}, ros_env,
                          namespace='/bad_cam_start')
    assert started.proc.wait(timeout=60) == 2, started.text
    started.stop()
    assert "cameras item 'a//b' is not a valid ROS name" in started.text, started.text
    assert "repeated '/'" in started.text and 'Traceback' not in started.text, started.text

    node = NodeProcess({'autostart': False}, ros_env, namespace='/bad_cam')
    helper = rclpy.create_node('bad_camera_helper')
    target = '/bad_cam/segmentation_node'
    try:
        param = Parameter(name='cameras', value=ParameterValue(
            type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=['front', 'a//b']))
        result = call_service(helper, SetParameters, f'{target}/set_parameters',
                              SetParameters.Request(parameters=[param])).results[0]
        assert not result.successful and "cameras item 'a//b'" in result.reason, result.reason
        got = call_service(helper, GetParameters, f'{target}/get_parameters',
                           GetParameters.Request(names=['cameras']))
        assert list(got.values[0].string_array_value) == ['']  # old value kept
        node.wait_for_output('refused parameter: cameras', timeout=10)  # and logged
    finally:
        helper.destroy_node()
        assert node.stop() == 0, node.text
