"""Drive a segmentation node with frames and collect its answers (the demo's and bag tools' core).

`NodeUnderTest` runs the node in its own process, as `ros2 run` would; `Streamer` publishes
frames at a fixed rate or in lockstep (the next frame only after the previous one was answered)
and records, per input stamp, when it was sent and when each output arrived.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from jetson_seg.vision.image_conversion import decode_image
from jetson_seg.ros.messages import detection_boxes

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'config'


def split_ros_args(argv: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Split `argv` (default: this process's arguments) into our own and the ROS parts.

    rcl (and rclpy's remove_ros_args) would take our own `--remap A:=B` for a deprecated
    rcl remap rule, so only the explicit ROS parts go to rclpy.
    """
    own: list[str] = []
    ros: list[str] = []
    inside = False
    for item in sys.argv[1:] if argv is None else argv:
        if item == '--ros-args':
            inside = True
        elif item == '--' and inside:
            inside = False
            continue
        (ros if inside else own).append(item)
    return own, ros


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def stamp_key(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def isolated_env(domain_id: int) -> dict[str, str]:
    """Environment for a measured run: own DDS domain, local discovery, large-image profile."""
    from jetson_seg.model_info import default_model_dir

    profile = next(p for p in (default_model_dir().parent.parent / 'config', CONFIG_DIR)
                   if (p / 'fastdds_large_images.xml').is_file()) / 'fastdds_large_images.xml'
    env = {'ROS_DOMAIN_ID': str(domain_id), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
           'FASTDDS_DEFAULT_PROFILES_FILE': str(profile), 'TF_CPP_MIN_LOG_LEVEL': '2',
           'PYTHONUNBUFFERED': '1',
           'ROS_LOG_DIR': os.environ.get('ROS_LOG_DIR') or
           tempfile.mkdtemp(prefix='jetson_seg_log_')}
    os.environ.update(env)
    return dict(os.environ)


class NodeUnderTest:
    """The segmentation node in a child process; its output goes to `log_path`."""

    def __init__(self, params: dict[str, object], log_path: Path, env: dict[str, str],
                 namespace: str = '', params_file: Path | None = None) -> None:
        cmd = [sys.executable, '-m', 'jetson_seg.ros.segmentation_node', '--ros-args']
        if params_file is not None:
            cmd += ['--params-file', str(params_file)]
        for key, value in params.items():
            if isinstance(value, bool):
                value = str(value).lower()
            cmd += ['-p', f'{key}:={value}']
        if namespace:
            cmd += ['-r', f'__ns:={namespace}']
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@dataclass
class FrameRecord:
    """What happened to one input frame."""

    key: int
    sent_at: float
    mask_at: float | None = None
    mask: np.ndarray | None = None
    detections: list | None = None


class Streamer:
    """Publishes frames to `image` (or `image/compressed`) and collects `segmentation/*`."""

    def __init__(self, node, compressed: bool = False, reliable: bool = False,
                 keep_overlays: int = 0, namespace: str = '') -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CompressedImage, Image
        from vision_msgs.msg import Detection2DArray

        self.node = node
        prefix = namespace.rstrip('/') + '/' if namespace else ''
        in_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if reliable
                            else ReliabilityPolicy.BEST_EFFORT)
        self.input_topic = prefix + ('image/compressed' if compressed else 'image')
        self.publisher = node.create_publisher(CompressedImage if compressed else Image,
                                               self.input_topic, in_qos)
        out_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.records: dict[int, FrameRecord] = {}
        self.overlays: dict[int, object] = {}
        self.keep_overlays = keep_overlays
        self.diagnostics: dict[str, str] = {}
        node.create_subscription(Image, prefix + 'segmentation/mask', self._on_mask, out_qos)
        node.create_subscription(Detection2DArray, prefix + 'segmentation/detections',
                                 self._on_detections, out_qos)
        if keep_overlays:
            node.create_subscription(Image, prefix + 'segmentation/overlay', self._on_overlay,
                                     out_qos)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_mask(self, msg) -> None:
        record = self.records.get(stamp_key(msg.header.stamp))
        if record is not None and record.mask_at is None:
            record.mask_at = time.time()
            record.mask = decode_image(msg).pixels[..., 0]  # a view of the message

    def _on_detections(self, msg) -> None:
        record = self.records.get(stamp_key(msg.header.stamp))
        if record is not None:
            record.detections = detection_boxes(msg)

    def _on_overlay(self, msg) -> None:
        if len(self.overlays) < self.keep_overlays:
            self.overlays[stamp_key(msg.header.stamp)] = msg

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            self.diagnostics = {kv.key: kv.value for kv in status.values}

    def wait_for_node(self, node_proc: NodeUnderTest | None, timeout: float = 120.0) -> None:
        """Block until the node subscribes to our input and publishes masks."""
        deadline = time.time() + timeout
        mask_topic = self.input_topic.rsplit('image', 1)[0] + 'segmentation/mask'
        while self.publisher.get_subscription_count() == 0 or \
                self.node.count_publishers(mask_topic) == 0:
            rclpy.spin_once(self.node, timeout_sec=0.1)
            if node_proc is not None and node_proc.proc.poll() is not None:
                raise RuntimeError(f'node exited; see {node_proc.log_path}')
            if time.time() > deadline:
                raise RuntimeError('node did not come up in time')
        end = time.time() + 0.5
        while time.time() < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def send(self, key: int, payload) -> FrameRecord:
        """Publish one frame (a message object or serialized CDR bytes) under `key`."""
        record = FrameRecord(key, time.time())
        self.records[key] = record
        self.publisher.publish(payload)
        return record

    def spin_for(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            rclpy.spin_once(self.node, timeout_sec=min(0.01, max(0.0, end - time.time())))

    def run(self, frames: Iterable[tuple[int, object]], rate_hz: float | None,
            lockstep_timeout: float = 5.0, on_frame: Callable[[int], None] | None = None,
            restamp: Callable[[int, object, float], int] | None = None) -> None:
        """Send every frame: at `rate_hz` (None = lockstep: wait for each answer).

        `restamp(key, payload, now)` may give the payload a fresh stamp and return its key
        (a live camera stamps frames when it takes them).
        """
        start = time.time()
        for index, (key, payload) in enumerate(frames):
            if rate_hz is not None:
                delay = start + index / rate_hz - time.time()
                if delay > 0:
                    self.spin_for(delay)
            if restamp is not None:
                key = restamp(key, payload, time.time())
            record = self.send(key, payload)
            if rate_hz is None:
                deadline = time.time() + lockstep_timeout
                while record.mask_at is None and time.time() < deadline:
                    rclpy.spin_once(self.node, timeout_sec=0.005)
                self.spin_for(0.002)  # detections follow the mask closely
            else:
                rclpy.spin_once(self.node, timeout_sec=0)
            if on_frame is not None:
                on_frame(index + 1)
        self.spin_for(1.5)  # late answers

    def run_camera(self, messages: list, rate_hz: float, total: int,
                   on_frame: Callable[[int], None] | None = None) -> dict[int, int]:
        """Publish prebuilt messages round-robin like a live camera: fresh stamps at `rate_hz`.

        Returns stamp key -> index of the message sent with that stamp.
        """
        sent_index: dict[int, int] = {}

        def restamp(index: int, msg, now: float) -> int:
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int(now % 1 * 1e9)
            key = stamp_key(msg.header.stamp)
            sent_index[key] = index
            return key

        frames = ((i % len(messages), messages[i % len(messages)]) for i in range(total))
        self.run(frames, rate_hz, on_frame=on_frame, restamp=restamp)
        return sent_index
