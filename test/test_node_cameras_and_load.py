"""Frame handling over DDS.

Several cameras on one model, overload (newest frame wins), either executor, and frames nobody
subscribes to counted but not processed.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from image_msgs import image_from_rgb, stamped
from ros_harness import NodeProcess, big_disc

from jetson_seg.ros.interface import CLIENT_OUTPUT_QOS, OUTPUTS
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import scene_stream

STAMPS = itertools.count(50_000)


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
        record = client.send(stamped(image_from_rgb(big_disc(), 'rgb8'), next(STAMPS)))
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
