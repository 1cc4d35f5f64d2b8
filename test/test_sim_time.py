"""Sim time and replay: node clock, bag_player --clock, bag_recorder metadata.

The /clock this test publishes runs ten times slower than the wall clock and jumps on demand,
so a figure computed on the wall clock instead of the node clock cannot pass.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from image_msgs import image_from_rgb
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosbags.interfaces import QosDurability, QosReliability
from rosgraph_msgs.msg import Clock
from ros_harness import NodeProcess
from vision_msgs.msg import LabelInfo, VisionClass

from jetson_seg.ros.interface import DIAGNOSTICS, DIAGNOSTICS_QOS
from jetson_seg.tools.bags import SampleBagSpec, make_sample_bag, typestore
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import scene_stream

SIM_START = 5000.0


def _time(seconds: float):
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = int(seconds), int(seconds % 1 * 1e9)
    return msg.clock


class SimClock:
    """Publishes /clock: SIM_START, then 0.1 sim s per wall s, plus `offset` (jumps)."""

    def __init__(self, node) -> None:
        self.node = node
        self.publisher = node.create_publisher(Clock, '/clock', 10)
        self.started = time.monotonic()
        self.offset = 0.0

    @property
    def now(self) -> float:
        return SIM_START + (time.monotonic() - self.started) * 0.1 + self.offset

    def publish(self) -> None:
        self.publisher.publish(Clock(clock=_time(self.now)))


def _status(arrays: list, node: str, after: int):
    """(DiagnosticArray, status of `node`) from message number `after` on: the array's header
    holds the stamp, which NodeClient's statuses leave out."""
    for msg in arrays[after:]:
        for status in msg.status:
            if status.hardware_id == node:
                yield msg, status


def _value(status: DiagnosticStatus, key: str) -> str:
    return next(kv.value for kv in status.values if kv.key == key)


def test_node_reads_stamps_staleness_and_timers_on_sim_time(ros_env):
    target = '/sim/segmentation_node'
    node = NodeProcess({'threads': 1, 'use_sim_time': True, 'stale_after': 1.0,
                        'diagnostics_period': 0.05}, ros_env, namespace='/sim')
    client = NodeClient.on_own_node('sim_client', namespace='/sim', outputs=('mask',))
    arrays: list = []
    client.node.create_subscription(DIAGNOSTICS.type, DIAGNOSTICS.name, arrays.append,
                                    DIAGNOSTICS_QOS)
    clock = SimClock(client.node)
    image = image_from_rgb(next(scene_stream(4)).image, 'rgb8')

    def run_until(predicate, timeout: float, send: bool):
        """Tick /clock (and send frames stamped 0.25 s of sim time ago) until a status fits."""
        start, deadline = len(arrays), time.monotonic() + timeout
        while time.monotonic() < deadline:
            clock.publish()
            if send:
                image.header.stamp = _time(clock.now - 0.25)
                client.publisher.publish(image)
            rclpy.spin_once(client.node, timeout_sec=0.05)
            for msg, status in _status(arrays, target, start):
                if predicate(msg, status):
                    return msg, status
        seen = [(status.message, _value(status, 'since_last_input_s'), m.header.stamp.sec)
                for m, status in _status(arrays, target, start)]
        raise AssertionError(f'no fitting status; last: {seen[-5:]}')

    try:
        node.wait_for_output('active: listening')
        # 3 wall seconds without frames are 0.3 sim seconds: not stale on the node clock
        run_until(lambda m, s: m.header.stamp.sec >= SIM_START, 30.0, False)
        wall_start = time.monotonic()
        msg, status = run_until(lambda m, s: time.monotonic() - wall_start > 3.0, 10.0, False)
        assert status.level == DiagnosticStatus.OK, status.message
        assert SIM_START <= msg.header.stamp.sec < SIM_START + 10  # diagnostics stamped in sim
        # frames stamped 0.25 s of sim time before the sim 'now' are 250 ms old
        msg, status = run_until(lambda m, s: int(_value(s, 'received')) >= 10, 30.0, True)
        age = float(_value(status, 'stamp_age_p50_ms'))
        assert 240.0 <= age <= 400.0, age
        # a jump of the sim clock with no frames: stale at once, whatever the wall clock did
        quiet_from = time.monotonic()  # frames still in flight land before the jump
        run_until(lambda m, s: time.monotonic() - quiet_from > 1.0, 10.0, False)
        clock.offset += 10.0
        msg, status = run_until(lambda m, s: 'no image' in s.message, 10.0, False)
        assert status.level == DiagnosticStatus.WARN
    finally:
        client.close()
        assert node.stop() == 0, node.text


def test_bag_player_publishes_the_bag_time_on_clock(ros_env, tmp_path):
    bag = make_sample_bag(tmp_path / 'bag', SampleBagSpec(frames=20, rate_hz=20.0, seed=2))
    listener = rclpy.create_node('clock_listener')
    ticks: list[int] = []
    listener.create_subscription(
        Clock, '/clock', lambda m: ticks.append(m.clock.sec * 1_000_000_000 + m.clock.nanosec),
        QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
    images = []
    listener.create_subscription(type(image_from_rgb(next(scene_stream(1)).image, 'rgb8')),
                                 '/camera/image_raw', images.append, 50)
    proc = subprocess.Popen([sys.executable, '-m', 'jetson_seg.tools.bag_player', str(bag),
                             '--topics', '/camera/image_raw', '--clock', '50'], env=ros_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while proc.poll() is None:
            rclpy.spin_once(listener, timeout_sec=0.02)
        output = proc.communicate(timeout=30)[0]
        for _ in range(20):
            rclpy.spin_once(listener, timeout_sec=0.02)
    finally:
        listener.destroy_node()
    assert proc.returncode == 0, output
    first = images[0].header.stamp.sec * 1_000_000_000 + images[0].header.stamp.nanosec
    last_ns = first + int(19 * 0.05e9)
    assert len(ticks) >= 20, (len(ticks), output)  # ~1 s of playback at 50 Hz
    assert all(first <= t <= last_ns for t in ticks), (ticks[:3], first, last_ns)
    assert ticks == sorted(ticks) and ticks[-1] - ticks[0] > 0.5e9


def test_recorder_keeps_offered_qos_vision_msgs_and_stamps_on_the_node_clock(ros_env, tmp_path):
    out = tmp_path / 'rec'
    proc = subprocess.Popen([sys.executable, '-m', 'jetson_seg.tools.bag_recorder', str(out),
                             '--topics', '/sim_rec/label_info', '--ros-args', '-p',
                             'use_sim_time:=true'], env=ros_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node('sim_rec_publisher')
    clock = node.create_publisher(Clock, '/clock', 10)
    latched = node.create_publisher(LabelInfo, '/sim_rec/label_info', QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    try:
        deadline = time.monotonic() + 30
        while latched.get_subscription_count() == 0 and time.monotonic() < deadline:
            clock.publish(Clock(clock=_time(1234.5)))
            rclpy.spin_once(node, timeout_sec=0.1)
        assert latched.get_subscription_count() > 0
        for _ in range(10):  # the recorder's clock has surely taken 1234.5 s by now
            clock.publish(Clock(clock=_time(1234.5)))
            rclpy.spin_once(node, timeout_sec=0.1)
        latched.publish(LabelInfo(class_map=[VisionClass(class_id=1, class_name='disc')]))
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0]
        node.destroy_node()
    assert proc.returncode == 0, output
    with AnyReader([out], default_typestore=typestore()) as reader:
        (conn,) = reader.connections
        qos = conn.ext.offered_qos_profiles
        assert qos and qos[0].durability == QosDurability.TRANSIENT_LOCAL, qos
        assert qos[0].reliability == QosReliability.RELIABLE
        stamps = [t for _, t, _ in reader.messages()]
        (table,) = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()]
    assert stamps == [pytest.approx(1234.5e9, abs=1e6)], stamps
    assert table.class_map[0].class_name == 'disc'  # vision_msgs types are known to the bag
