"""Track ids on the node's detections over DDS: persistent, stamp-driven, never reused.

A generated 120 Hz sequence of moving objects (training/sequences.py, with ground-truth
identities) goes through the node with the packaged model; each published Detection2D is matched
to the object under its box centre, and its id must stay that object's while it is tracked.
"""

from __future__ import annotations

import collections
import itertools

import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from image_msgs import image_from_rgb
from ros_harness import NodeProcess, call_service
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.sequences import SequenceSpec, sequence_frames

NAMESPACE = '/tracking'
TARGET = f'{NAMESPACE}/segmentation_node'
#: Base of the stamps (s): far from the probe frames' keys.
T0 = 1000


def _run(client: NodeClient, frames, base: float) -> list[dict[str, object]]:
    """Send `frames` in lockstep; per frame, {object id under each detection: its track id}."""
    seen = []
    for frame in frames:
        msg = image_from_rgb(frame.image, 'rgb8')
        stamp = base + frame.stamp
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), round(stamp % 1 * 1e9)
        msg.header.frame_id = 'camera'
        detections = client.request(msg)['detections'].detections
        matched = {}
        for det in detections:
            x, y = (int(det.bbox.center.position.x), int(det.bbox.center.position.y))
            obj = int(frame.ids[min(y, frame.ids.shape[0] - 1), min(x, frame.ids.shape[1] - 1)])
            if obj and det.id:
                matched[obj] = det.id
        seen.append({'ids': [d.id for d in detections if d.id], 'matched': matched})
    return seen


def _persistence(seen: list[dict]) -> float:
    """Share of (object, frame) pairs whose track id is that object's most frequent one."""
    per_object = collections.defaultdict(collections.Counter)
    for record in seen:
        for obj, track in record['matched'].items():
            per_object[obj][track] += 1
    kept = sum(counts.most_common(1)[0][1] for counts in per_object.values())
    return kept / max(1, sum(sum(c.values()) for c in per_object.values()))


def _set(node, name: str, value: int | float):
    param = Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=value) if isinstance(value, float)
        else ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value))
    return call_service(node, SetParameters, f'{TARGET}/set_parameters',
                        SetParameters.Request(parameters=[param])).results[0]


def test_track_ids_persist_across_frames_gaps_and_a_bag_loop(ros_env):
    spec = SequenceSpec(frames=72, min_size=40.0, max_objects=4)
    frames = list(sequence_frames(7, spec))
    node = NodeProcess({'threads': 1}, ros_env, namespace=NAMESPACE)
    client = NodeClient.on_own_node('tracking_client', namespace=NAMESPACE,
                                    outputs=('detections',))
    try:
        node.wait_for_output('active: listening')
        client.connect(node_proc=node)
        every = _run(client, frames[:36], T0)
        ids = [int(i) for record in every for i in record['ids']]
        assert ids and all(len(r['ids']) == len(set(r['ids'])) for r in every)  # unique a frame
        assert all(not r['ids'] for r in every[:2])  # min_hits 3: nothing confirmed before
        assert len({obj for r in every for obj in r['matched']}) >= 2  # objects are tracked
        assert _persistence(every) >= 0.9, every
        # two of every three frames left out, stamps still 1/120 s apart: the tracks hold
        gaps = _run(client, frames[36::3], T0)
        assert _persistence(every + gaps) >= 0.85
        continuing = {t for r in gaps for t in r['ids']} & {t for r in every for t in r['ids']}
        assert continuing  # the same objects, the same ids across the gap
        # a bag loop: the stamp jumps back, the tracks start over with ids never used before
        looped = _run(client, frames[:12], T0)
        assert not looped[0]['ids']
        new = {int(i) for r in looped for i in r['ids']}
        assert new and min(new) > max(int(i) for r in every + gaps for i in r['ids'])
        # tracking parameters: refused with the reason, or applied at once
        refused = _set(client.node, 'tracking.min_hits', 0)
        assert not refused.successful and 'tracking.min_hits' in refused.reason
        assert _set(client.node, 'tracking.min_hits', 1).successful
        assert _set(client.node, 'tracking.color_weight', 0.0).successful  # no colours computed
        restarted = _run(client, frames[:2], T0 - 100)  # back in time again: a fresh start
        assert restarted[0]['ids']  # min_hits 1: confirmed on the first frame
    finally:
        client.close()
        assert node.stop() == 0, node.text


def test_two_cameras_track_apart_with_ids_unique_across_them(ros_env):
    frames = list(itertools.islice(sequence_frames(11, SequenceSpec(min_size=40.0)), 8))
    node = NodeProcess({'threads': 1, 'cameras': '[left, right]'}, ros_env,
                       namespace='/tracking_two')
    clients = [NodeClient.on_own_node(f'tracking_{cam}', namespace=f'/tracking_two/{cam}',
                                      outputs=('detections',),
                                      node_name='/tracking_two/segmentation_node')
               for cam in ('left', 'right')]
    try:
        node.wait_for_output('active: listening')
        seen = []
        for client in clients:
            client.connect(node_proc=node)
            seen.append({i for r in _run(client, frames, T0) for i in r['ids']})
        assert seen[0] and seen[1] and not seen[0] & seen[1]
    finally:
        for client in clients:
            client.close()
        assert node.stop() == 0, node.text


def test_detection_ids_without_tracks_are_empty_not_indices():
    """Before confirmation a detection carries no id: an index would read as a track id."""
    from std_msgs.msg import Header

    from jetson_seg.ros.messages import detections_msg
    from jetson_seg.vision.postprocess import Region

    region = Region(class_id=1, x0=0, y0=0, x1=4, y1=4, score=0.9, area=16)
    msg = detections_msg(Header(), [region, region], ['bg', 'a'], ['', '7'])
    assert [d.id for d in msg.detections] == ['', '7']
    assert np.isclose(msg.detections[1].results[0].hypothesis.score, 0.9)


def test_tracks_carry_the_detection_ids_velocities_and_directions(ros_env):
    """segmentation/tracks: one Track per confirmed track, ids as on the detections, velocities
    near the objects' true ones, and viewing directions once camera_info comes."""
    from sensor_msgs.msg import CameraInfo

    from jetson_seg.ros.interface import CAMERA_INFO, CAMERA_INFO_QOS

    frames = list(sequence_frames(5, SequenceSpec(frames=30, min_size=48.0, max_objects=3)))
    node = NodeProcess({'threads': 1}, ros_env, namespace='/tracks')
    client = NodeClient.on_own_node('tracks_client', namespace='/tracks',
                                    outputs=('detections', 'tracks'))
    infos = client.node.create_publisher(CameraInfo, CAMERA_INFO.under('/tracks'),
                                         CAMERA_INFO_QOS)
    fx = 500.0
    try:
        node.wait_for_output('active: listening')
        client.connect(node_proc=node)
        answers = []
        for frame in frames:
            msg = image_from_rgb(frame.image, 'rgb8')
            msg.header.stamp.sec, msg.header.stamp.nanosec = T0, round(frame.stamp * 1e9)
            info = CameraInfo(header=msg.header, width=640, height=480, distortion_model='')
            info.k = [fx, 0.0, 320.0, 0.0, fx, 240.0, 0.0, 0.0, 1.0]
            infos.publish(info)
            answers.append((frame, client.request(msg)))
        speeds = []
        for frame, answer in answers:
            tracks = answer['tracks']
            assert tracks.header.stamp == answer['detections'].header.stamp
            owners = {t.id for t in tracks.tracks if t.seen and not t.shares_region}
            assert owners == {d.id for d in answer['detections'].detections if d.id}
            for track in tracks.tracks:
                assert track.age >= 0 and track.hits >= 3 and track.class_id in '123'
                x, y = track.bbox.center.position.x, track.bbox.center.position.y
                obj = int(frame.ids[min(int(y), 479), min(int(x), 639)])
                truth = {o.object_id: o for o in frame.objects}.get(obj)
                if track.seen and not track.shares_region and truth is not None and \
                        track.hits >= 8:
                    speeds.append((np.hypot(track.velocity_x, track.velocity_y),
                                   np.hypot(*truth.velocity)))
                if track.direction.z:  # camera_info arrived: the ray through the box centre
                    ray = np.array([(x - 320.0) / fx, (y - 240.0) / fx, 1.0])
                    np.testing.assert_allclose(
                        [track.direction.x, track.direction.y, track.direction.z],
                        ray / np.linalg.norm(ray), atol=1e-6)
        assert any(t.direction.z for _, a in answers[10:] for t in a['tracks'].tracks)
        assert len(speeds) >= 10
        measured, true = np.array(speeds).T
        assert np.median(np.abs(measured - true) / true) < 0.25, speeds  # px/s from stamps
    finally:
        client.close()
        assert node.stop() == 0, node.text


def test_the_node_scores_as_its_pipeline_does_in_process(ros_env):
    """evaluate_tracking over DDS: every frame, then one in three, as the in-process figures."""
    from jetson_seg.tools.evaluate_tracking import (evaluate, evaluate_node, generated_frames,
                                                    pipeline_source)

    spec = SequenceSpec(frames=36, min_size=30.0, max_objects=4)
    node = NodeProcess({'threads': 1}, ros_env, namespace='/tracking_eval')
    client = NodeClient.on_own_node('tracking_eval', namespace='/tracking_eval',
                                    outputs=('detections',))
    try:
        node.wait_for_output('active: listening')
        client.connect(node_proc=node)
        over_dds = evaluate_node(client, [lambda start_ns: generated_frames(5, spec, start_ns)],
                                 [1, 3])
    finally:
        client.close()
        assert node.stop() == 0, node.text
    in_process = evaluate([5], spec, ['pipeline'], [1, 3], pipeline=pipeline_source())
    for kept in ('every 1', 'every 3'):
        dds, own = over_dds[kept], in_process['pipeline'][kept]
        assert dds['frames'] == own['frames'] == (36 if kept == 'every 1' else 12)
        assert dds['num_objects'] == own['num_objects'] > 0
        assert dds['num_misses'] < dds['num_objects']  # the node's ids were scored
        for name in ('idf1', 'mota', 'num_switches', 'num_false_positives', 'num_misses'):
            assert dds[name] == own[name], (kept, name, dds, own)
