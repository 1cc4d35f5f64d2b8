"""Bag tools: rosbag2 files both ways, playback through the node, evaluation, clean recording."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from jetson_seg.tools.bags import SampleBagSpec, make_sample_bag, typestore
from jetson_seg.training.scenes import scene_stream

FRAMES = 12


def _read_all(path):
    with AnyReader([path], default_typestore=typestore()) as reader:
        return [(c.topic, t, reader.deserialize(raw, c.msgtype))
                for c, t, raw in reader.messages()]


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_sample_bag_reads_back_intact_with_rosbags(tmp_path, storage):
    spec = SampleBagSpec(frames=5, rate_hz=20.0, storage=storage, compressed=True, seed=9)
    make_sample_bag(tmp_path / 'bag', spec)
    messages = _read_all(tmp_path / 'bag')
    by_topic = {}
    for topic, t, msg in messages:
        by_topic.setdefault(topic, []).append((t, msg))
    assert {k: len(v) for k, v in by_topic.items()} == {
        '/camera/image_raw': 5, '/camera/ground_truth': 5, '/camera/camera_info': 5,
        '/camera/image_raw/compressed': 5}
    scenes = scene_stream(9)
    for (t, image), (_, truth), (_, jpeg) in zip(by_topic['/camera/image_raw'],
                                                 by_topic['/camera/ground_truth'],
                                                 by_topic['/camera/image_raw/compressed']):
        scene = next(scenes)
        assert image.encoding == 'rgb8' and image.step == 640 * 3
        np.testing.assert_array_equal(image.data.reshape(480, 640, 3), scene.image)
        np.testing.assert_array_equal(truth.data.reshape(480, 640), scene.mask)
        assert image.header.stamp == truth.header.stamp == jpeg.header.stamp
        decoded = cv2.imdecode(jpeg.data, cv2.IMREAD_COLOR)[..., ::-1]
        smooth = [cv2.GaussianBlur(np.ascontiguousarray(a), (0, 0), 2).astype(int)
                  for a in (decoded, scene.image)]  # jpeg drops pixel noise, keeps content
        assert np.abs(smooth[0] - smooth[1]).mean() < 3
    stamps = [t for t, _ in by_topic['/camera/image_raw']]
    assert np.allclose(np.diff(stamps), 0.05e9, atol=1)


def _write_like_ros2_bag_record(path, storage: str, compressed: bool) -> None:
    """A bag written directly with rosbags, as `ros2 bag record` lays one out."""
    store = typestore()
    image_t = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    topic = '/cam/image_raw' + ('/compressed' if compressed else '')
    header_t = store.types['std_msgs/msg/Header']
    time_t = store.types['builtin_interfaces/msg/Time']
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    scenes = scene_stream(21)
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        img_conn = writer.add_connection(topic, image_t, typestore=store)
        gt_conn = writer.add_connection('/cam/truth', 'sensor_msgs/msg/Image', typestore=store)
        for i in range(FRAMES):
            scene = next(scenes)
            stamp = 1_600_000_000_000_000_000 + i * 33_000_000
            header = header_t(stamp=time_t(sec=stamp // 10**9, nanosec=stamp % 10**9),
                              frame_id='cam')
            if compressed:
                ok, buf = cv2.imencode('.png', cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
                msg = store.types[image_t](header=header, format='bgr8; png compressed bgr8',
                                           data=buf.reshape(-1))
            else:  # bgr8 with padded rows, as some drivers send
                bgr = cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR).reshape(480, -1)
                padded = np.zeros((480, bgr.shape[1] + 32), np.uint8)
                padded[:, :bgr.shape[1]] = bgr
                msg = store.types[image_t](header=header, height=480, width=640,
                                           encoding='bgr8', is_bigendian=0,
                                           step=padded.shape[1], data=padded.reshape(-1))
            truth = store.types['sensor_msgs/msg/Image'](
                header=header, height=480, width=640, encoding='mono8', is_bigendian=0,
                step=640, data=scene.mask.reshape(-1))
            writer.write(img_conn, stamp, store.serialize_cdr(msg, image_t))
            writer.write(gt_conn, stamp, store.serialize_cdr(truth, 'sensor_msgs/msg/Image'))


def _evaluate(ros_env, bag, out, *extra) -> dict:
    cmd = [sys.executable, '-m', 'jetson_seg.tools.evaluate', str(bag), '--output', str(out),
           '--domain-id', ros_env['ROS_DOMAIN_ID'], *extra]
    result = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mIoU' in result.stdout
    return json.loads((out / 'report.json').read_text())


@pytest.mark.parametrize('storage,compressed', [('sqlite3', False), ('mcap', True)])
def test_bags_recorded_elsewhere_play_through_the_node(ros_env, tmp_path, storage, compressed):
    bag = tmp_path / 'recorded'
    _write_like_ros2_bag_record(bag, storage, compressed)
    topic = '/cam/image_raw' + ('/compressed' if compressed else '')
    report = _evaluate(ros_env, bag, tmp_path / 'eval', '--lockstep', '--image-topic', topic,
                       '--truth-topic', '/cam/truth', '--node-param', 'threads:=1')
    assert report['frames_sent'] == FRAMES and report['answered'] == FRAMES
    assert report['mean_iou'] > 0.6, report


def test_lockstep_evaluation_is_repeatable(ros_env, tmp_path):
    bag = make_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=FRAMES, seed=5))
    first = _evaluate(ros_env, bag, tmp_path / 'a', '--node-param', 'threads:=1')
    second = _evaluate(ros_env, bag, tmp_path / 'b', '--node-param', 'threads:=1')
    assert first['answered'] == second['answered'] == FRAMES
    for key in ('mean_iou', 'iou', 'pixel_accuracy', 'detection'):
        assert first[key] == second[key], key
    assert 0 < first['detection']['recall'] <= 1


def test_own_flags_and_ros_arguments_are_told_apart():
    from jetson_seg.tools.node_client import split_ros_args

    argv = ['bag', '--remap', '/a:=/b', '--ros-args', '-r', '__node:=player', '--',
            '--rate', '2', '--ros-args', '-p', 'use_sim_time:=true']
    own, ros = split_ros_args(argv)  # as `ros2 launch` appends them to a Node's arguments
    assert own == ['bag', '--remap', '/a:=/b', '--rate', '2']
    assert ros == ['--ros-args', '-r', '__node:=player', '--ros-args', '-p', 'use_sim_time:=true']


def test_player_publishes_bag_messages_intact_with_remap(ros_env, tmp_path):
    import rclpy
    from sensor_msgs.msg import Image

    bag = make_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=4, seed=3, rate_hz=50))
    node = rclpy.create_node('player_listener')
    got = []
    node.create_subscription(Image, '/replayed', got.append, 10)
    proc = subprocess.Popen([sys.executable, '-m', 'jetson_seg.tools.bag_player', str(bag),
                             '--topics', '/camera/image_raw', '--remap',
                             '/camera/image_raw:=/replayed', '--rate', '2.0'], env=ros_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while len(got) < 4 and time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    output = proc.communicate(timeout=30)[0]
    node.destroy_node()
    assert proc.returncode == 0, output
    assert len(got) == 4, output
    scenes = scene_stream(3)
    for msg in got:
        rgb = np.frombuffer(msg.data, np.uint8).reshape(480, 640, 3)
        np.testing.assert_array_equal(rgb, next(scenes).image)


def test_recording_interrupted_by_sigterm_leaves_a_readable_bag(ros_env, tmp_path):
    import rclpy
    from sensor_msgs.msg import Image

    from jetson_seg.ros.interface import qos
    from jetson_seg.ros.messages import image_msg

    out = tmp_path / 'rec'
    proc = subprocess.Popen([sys.executable, '-m', 'jetson_seg.tools.bag_recorder', str(out),
                             '--topics', '/rec_test/image', '--storage', 'mcap',
                             '--ros-args', '-r', '__node:=launched_recorder'], env=ros_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node('rec_publisher')
    pub = node.create_publisher(Image, '/rec_test/image', qos('reliable', 10))
    deadline = time.time() + 30
    while pub.get_subscription_count() == 0 and time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert pub.get_subscription_count() > 0
    from std_msgs.msg import Header
    frame = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    for i in range(10):
        pub.publish(image_msg(Header(frame_id=f'f{i}'), frame, 'rgb8'))
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    node.destroy_node()
    assert proc.returncode == 0, output
    assert (out / 'metadata.yaml').is_file()
    messages = _read_all(out)
    assert [m.header.frame_id for _, _, m in messages] == [f'f{i}' for i in range(10)]
    np.testing.assert_array_equal(messages[0][2].data.reshape(48, 64, 3), frame)
