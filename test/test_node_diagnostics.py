"""/diagnostics over DDS.

Stale and slow input, one silent camera of several, and a report in every lifecycle state (with
the latched label info after each configure).
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from ros_harness import (ROBOT_TARGET, NodeProcess, call_service, robot_client, set_parameter,
                         status_value, stream_until, wait_status)

from jetson_seg.tools.node_client import NodeClient


def _transition(node, target: str, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return call_service(node, ChangeState, f'{target}/change_state', request).success


def test_dead_camera_warns_and_live_camera_reads_ok(robot_node):
    client = robot_client('health_client', ('mask',))
    try:
        client.connect()
        # nothing sent: after stale_after (1 s) the input is stale
        stale = wait_status(client, lambda s: 'no image' in s.message,
                            after=len(client.statuses))
        assert stale.level == DiagnosticStatus.WARN and status_value(stale, 'state') == 'active'
        # OK once the window holds only these fresh frames
        alive = stream_until(client, lambda s: s.level == DiagnosticStatus.OK and
                             float(status_value(s, 'stamp_age_max_ms')) < 60_000)
        assert alive.message == 'running'
        # far above what we send
        assert set_parameter(client.node, ROBOT_TARGET, 'expected_rate', 1000.0).successful
        slow = stream_until(client, lambda s: 'below expected' in s.message)
        assert slow.level == DiagnosticStatus.WARN
        assert set_parameter(client.node, ROBOT_TARGET, 'expected_rate', 0.0).successful
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
        status = wait_status(client, lambda s: True, timeout=60.0)
        assert status.level == DiagnosticStatus.ERROR and 'unconfigured' in status.message
        assert not _transition(client.node, target, Transition.TRANSITION_CONFIGURE)
        status = wait_status(client, lambda s: 'missing' in s.message,
                             after=len(client.statuses))
        assert status.level == DiagnosticStatus.ERROR  # the reason, not just the state
        assert set_parameter(client.node, target, 'model_path', '').successful
        stamps = []
        for _ in range(2):  # configure, cleanup, configure: a new latched table each time
            assert _transition(client.node, target, Transition.TRANSITION_CONFIGURE)
            assert client.spin_until(lambda: len(client.label_info) > len(stamps), 10.0)
            stamps.append(client.label_info[-1].header.stamp)
            status = wait_status(client, lambda s: status_value(s, 'state') == 'inactive',
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


def test_one_dead_camera_of_several_is_named(ros_env):
    target = '/two_cams/segmentation_node'
    node = NodeProcess({'threads': 1, 'cameras': '[front, rear]', 'stale_after': 1.0,
                        'diagnostics_period': 0.2}, ros_env, namespace='/two_cams')
    front = NodeClient.on_own_node('front_client', namespace='/two_cams/front',
                                   outputs=('mask',), node_name=target)
    try:
        node.wait_for_output('active: listening')
        front.connect()
        status = stream_until(front, lambda s: 'rear' in s.message)  # rear is silent
        assert status.level == DiagnosticStatus.WARN and 'no image from rear' in status.message
        assert 'front' not in status.message
    finally:
        front.close()
        assert node.stop() == 0, node.text
