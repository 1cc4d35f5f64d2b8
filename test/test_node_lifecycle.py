"""Node behaviour over DDS: several cameras, overload policy, parameters, lifecycle."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from image_msgs import image_from_rgb, stamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from ros_harness import NodeProcess, call_service
from shm import fastdds_files, leaked, segments_of

from jetson_seg.ros.interface import CLIENT_OUTPUT_QOS, OUTPUTS
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted
from jetson_seg.training.scenes import CLASS_COLORS, scene_stream

STAMPS = itertools.count(50_000)


def _big_disc() -> np.ndarray:
    """A frame the model segments without doubt: one large solid disc on grey."""
    image = np.full((480, 640, 3), 128, np.uint8)
    cv2.circle(image, (320, 240), 90, (220, 30, 30), -1, cv2.LINE_AA)
    return image


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


@pytest.fixture(scope='module')
def multi_node(ros_env):
    node = NodeProcess({'threads': 1, 'cameras': '[cam_a, cam_b, cam_c]'}, ros_env,
                       namespace='/multi')
    node.wait_for_output('active: listening')
    yield node
    assert node.stop() == 0, node.text


def test_several_cameras_share_one_model(multi_node):
    clients = {cam: NodeClient.on_own_node(f'client_{cam}', namespace=f'/multi/{cam}',
                                           outputs=('mask', 'detections'),
                                           node_name='/multi/segmentation_node')
               for cam in ('cam_a', 'cam_b')}
    other = clients['cam_a']
    frames_on_a: list[str] = []  # every mask on cam_a's topic, answers to others' frames too
    mask = OUTPUTS['mask']
    other.node.create_subscription(mask.type, mask.under('/multi/cam_a'),
                                   lambda m: frames_on_a.append(m.header.frame_id),
                                   CLIENT_OUTPUT_QOS)
    try:
        for client in clients.values():
            client.connect()
        scenes = scene_stream(8)
        for cam, client in clients.items():
            scene = next(scenes)
            msg = stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS), frame_id=cam)
            answer = client.request(msg)
            assert answer['mask'].header.frame_id == cam
            assert (answer['mask'].height, answer['mask'].width) == (480, 640)
        assert 'cam_a' in frames_on_a and 'cam_b' not in frames_on_a, frames_on_a
        assert other.spin_until(lambda: other.figures().get('cameras') == '3', 5.0)
    finally:
        for client in clients.values():
            client.close()


@pytest.fixture(scope='module')
def single_node(ros_env):
    node = NodeProcess({'threads': 1}, ros_env, namespace='/behaviour')
    node.wait_for_output('active: listening')
    yield node
    assert node.stop() == 0, node.text


def test_overload_drops_stale_frames_and_answers_the_newest(ros_env):
    """Bursts far faster than the node: stale frames are dropped and counted, the newest wins.

    Input is reliable here so that the newest frame of a burst surely reaches the node (best
    effort may lose any frame of a burst, the last one included, which says nothing about
    the node's policy).
    """
    name = '/overload/segmentation_node'
    node = NodeProcess({'threads': 1, 'input_reliability': 'reliable'}, ros_env,
                       namespace='/overload')
    client = NodeClient.on_own_node('overload_client', namespace='/overload', reliable=True,
                                    outputs=('mask',), node_name=name)
    try:
        node.wait_for_output('active: listening')
        client.connect()
        scene = next(scene_stream(2))
        sent, counts = 0, {}
        for _ in range(5):  # how many frames a burst leaves pending depends on the machine
            seen = counts.get('received', 0)
            frames = [stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS))
                      for _ in range(40)]
            for msg in frames:  # 500 Hz, several times the node's rate: a reliable depth-1
                last = client.send(msg)  # link delivers them rather than collapsing
                time.sleep(0.002)        # the burst into its last frame
            sent += len(frames)
            answered = client.spin_until(lambda: last.mask_at is not None, 20.0)
            assert answered, (client.answered(), node.text[-3000:])

            def settled() -> bool:
                nonlocal counts
                counts = client.counters()
                return counts.get('received', 0) > seen and \
                    counts['received'] == counts['answered'] + counts['dropped'] + \
                    counts['unwanted'] + counts['rejected']  # diagnostics of this burst
            assert client.spin_until(settled, 10.0), counts
            if counts['dropped'] > 0:
                break
        assert counts['dropped'] > 0 and counts['rejected'] == 0, counts
        assert client.answered() < sent
    finally:
        client.close()
        node.stop()


@pytest.mark.parametrize('executor,name', [('events', 'EventsExecutor'),
                                           ('single_threaded', 'SingleThreadedExecutor')])
def test_either_executor_serves_frames(ros_env, executor, name):
    namespace = f'/exec_{executor}'
    node = NodeProcess({'threads': 1, 'executor': executor}, ros_env, namespace=namespace)
    client = NodeClient.on_own_node(f'client_{executor}', namespace=namespace,
                                    outputs=('mask', 'detections'))
    try:
        node.wait_for_output('active: listening')
        assert f'executor: {name}' in node.text
        client.connect()
        record = client.send(stamped(image_from_rgb(_big_disc(), 'rgb8'), next(STAMPS)))
        assert client.spin_until(lambda: record.mask_at is not None, 20.0), node.text[-3000:]
        mask = np.asarray(record.answers['mask'].data, np.uint8).reshape(480, 640)
        assert mask[240, 320] == 1 and mask[20, 20] == 0  # the disc, on background
    finally:
        client.close()
        node.stop()


def test_frames_nobody_subscribes_to_are_counted_not_processed(single_node):
    client = NodeClient.on_own_node('idle_client', namespace='/behaviour', outputs=(),
                                    node_name='/behaviour/segmentation_node')
    try:
        client.connect()
        client.spin_until(lambda: 'unwanted' in client.counters(), 10.0)
        start = client.counters().get('unwanted', 0)
        scene = next(scene_stream(3))
        for _ in range(20):  # earlier clients' subscriptions may take a moment to vanish
            client.send(stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS)))
            if client.spin_until(lambda: client.counters().get('unwanted', 0) > start, 0.5):
                break
        assert client.counters().get('unwanted', 0) > start, client.figures()
        # not processed: from here on every frame is counted unwanted, none answered
        before = client.counters()
        for _ in range(3):
            client.send(stamped(image_from_rgb(scene.image, 'rgb8'), next(STAMPS)))
            client.spin_for(0.2)
        assert client.spin_until(
            lambda: client.counters().get('unwanted', 0) > before['unwanted'], 10.0), \
            client.figures()
        client.spin_for(1.5)  # the next diagnostics: answered would have grown by now
        assert 'answered' in before and client.counters()['answered'] == before['answered'], \
            client.figures()
    finally:
        client.close()


def _set(node, target: str, name: str, value: float):
    param = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                      double_value=value))
    return call_service(node, SetParameters, f'{target}/set_parameters',
                        SetParameters.Request(parameters=[param])).results[0]


def test_viewer_max_rate_caps_colour_and_overlay_but_never_masks(single_node, ros_env):
    client = NodeClient.on_own_node('viewer_client', namespace='/behaviour',
                                    outputs=('mask', 'color_mask', 'overlay'))
    target = '/behaviour/segmentation_node'
    try:
        client.connect()
        assert not _set(client.node, target, 'viewer_max_rate', -1.0).successful
        assert _set(client.node, target, 'viewer_max_rate', 4.0).successful
        sent = client.stream_camera([image_from_rgb(_big_disc(), 'rgb8')], 20.0, 60)  # 3 s

        def answered(output: str) -> int:
            return sum(output in client.records[key].arrived_at for key in sent)
        assert answered('mask') >= 50  # every frame the node took is answered
        assert 8 <= answered('overlay') <= 16  # 4 Hz for 3 s, not 20 Hz
        assert answered('color_mask') == answered('overlay')  # both viewer images, together
    finally:
        assert _set(client.node, target, 'viewer_max_rate', 0.0).successful
        client.close()


def test_parameters_refused_with_reason_or_applied_at_runtime(single_node, ros_env):
    client = NodeClient.on_own_node('param_client', namespace='/behaviour',
                                    outputs=('mask', 'overlay'))
    target = '/behaviour/segmentation_node'
    try:
        client.connect()
        bad = _set(client.node, target, 'overlay_alpha', 1.7)
        assert not bad.successful and 'overlay_alpha' in bad.reason
        got = call_service(client.node, GetParameters, f'{target}/get_parameters',
                           GetParameters.Request(names=['overlay_alpha']))
        assert got.values[0].double_value == 0.5  # old value kept
        image = _big_disc()
        palette = np.array(CLASS_COLORS, np.uint8)
        for alpha in (0.0, 1.0):
            assert _set(client.node, target, 'overlay_alpha', alpha).successful
            answer = client.request(stamped(image_from_rgb(image, 'rgb8'), next(STAMPS)))
            overlay = np.frombuffer(answer['overlay'].data, np.uint8).reshape(480, 640, 3)
            mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(480, 640)
            assert (mask == 1).sum() > 10_000  # the disc was found
            expected = image.copy()
            if alpha == 1.0:  # objects fully in their class colour, background untouched
                expected[mask > 0] = palette[mask[mask > 0]]
            np.testing.assert_array_equal(overlay, expected)
        assert _set(client.node, target, 'overlay_alpha', 0.5).successful
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
