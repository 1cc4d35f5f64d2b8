"""Drive a segmentation node with frames and collect its answers (tools' and tests' client).

`NodeUnderTest` runs the node in its own process, as `ros2 run` would. `NodeClient` talks to a
running node: it proves the connection with probe frames, then serves single requests (tests)
and timed streams (demo, benchmark, stress, evaluate: at a fixed rate, or in lockstep, the next
frame only after the previous one was answered), recording per input stamp when a frame was
sent and when each output arrived.
"""

from __future__ import annotations

import collections
import importlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np
import rclpy
from rclpy.serialization import deserialize_message

from jetson_seg.ros.interface import (CLIENT_OUTPUT_QOS, DIAGNOSTICS, DIAGNOSTICS_QOS,
                                      LABEL_INFO, LABEL_INFO_QOS, OUTPUTS, PUBLISHED,
                                      client_input_qos,
                                      input_topic, set_stamp, stamp_key)
from jetson_seg.ros.messages import detection_boxes
from jetson_seg.ros.serialized import stamp_key_of
from jetson_seg.vision.frame_stats import is_count
from jetson_seg.vision.image_conversion import decode_image

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


def isolated_env(domain_id: int) -> dict[str, str]:
    """Environment for a measured run: own DDS domain, local discovery, large-image profile."""
    from jetson_seg.model_info import default_model_dir
    from jetson_seg.ros.rclpy_compat import apply_env, fastdds_profile_env, local_discovery_env

    profile = next(p for p in (default_model_dir().parent.parent / 'config', CONFIG_DIR)
                   if (p / 'fastdds_large_images.xml').is_file()) / 'fastdds_large_images.xml'
    env = {'ROS_DOMAIN_ID': str(domain_id), 'TF_CPP_MIN_LOG_LEVEL': '2',
           'PYTHONUNBUFFERED': '1',
           'ROS_LOG_DIR': os.environ.get('ROS_LOG_DIR') or
           tempfile.mkdtemp(prefix='jetson_seg_log_')}
    os.environ.update(env)
    # Local discovery and the profile, in the variables this ROS distro reads.
    apply_env(os.environ, {**local_discovery_env(), **fastdds_profile_env(str(profile))})
    return dict(os.environ)


class NodeUnderTest:
    """The segmentation node in a child process; its output goes to `log_path`."""

    def __init__(self, params: dict[str, object], log_path: Path, env: dict[str, str],
                 namespace: str = '', params_file: Path | None = None,
                 wrapper: Sequence[str] = ()) -> None:
        """`wrapper`: a command the node runs under (it execs its arguments), e.g. unshare."""
        cmd = [*wrapper, sys.executable, '-m', 'jetson_seg.ros.segmentation_node', '--ros-args']
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


#: Stamp keys of probe frames start here (January 2038): no camera or bag frame is stamped there.
_PROBE_KEYS = (2**31 - 1) * 1_000_000_000


def _probe_frame(compressed: bool):
    """A small black frame: cheap for the node, valid in either transport."""
    from sensor_msgs.msg import CompressedImage, Image

    if compressed:
        png = cv2.imencode('.png', np.zeros((48, 64), np.uint8))[1]
        return CompressedImage(format='png', data=png.tobytes())
    return Image(height=48, width=64, encoding='rgb8', step=64 * 3, data=bytes(64 * 48 * 3))


@dataclass
class FrameRecord:
    """What happened to one input frame: when it was sent and when each output answered it."""

    key: int
    sent_at: float
    arrived_at: dict[str, float] = field(default_factory=dict)  # output -> time.time()
    answers: dict[str, Any] = field(default_factory=dict)  # output -> message, where kept

    @property
    def mask_at(self) -> float | None:
        return self.arrived_at.get('mask')

    @property
    def mask(self) -> np.ndarray | None:
        """Class ids: a view of the mask message."""
        msg = self.answers.get('mask')
        return None if msg is None else decode_image(msg).pixels[..., 0]

    @property
    def detections(self) -> list | None:
        msg = self.answers.get('detections')
        return None if msg is None else detection_boxes(msg)


class NodeClient:
    """Publishes frames to one camera input of a node and collects its outputs by stamp key.

    `connect` proves the connection end to end. Discovery is asymmetric: the node may see our
    input before its publishers match our subscriptions, and a frame whose outputs nobody wants
    yet is counted as unwanted, not queued. So it sends probe frames, stamped in 2038 (no record
    uses those stamps), until one is answered on every collected output. The node counts probes
    like any frame; `counters()` and `figures()` can leave them out.
    """

    def __init__(self, node, namespace: str = '', outputs: Sequence[str] = tuple(OUTPUTS),
                 compressed: bool = False, reliable: bool = False,
                 keep_at_most: Mapping[str, int] | None = None,
                 node_name: str | None = None) -> None:
        """Talk to the camera in `namespace` (e.g. '/robot/front'; '' = the node's own).

        `keep_at_most` caps the messages kept per output (the rest are only timed: overlays of
        a long stream would fill the memory); `node_name`, fully qualified, picks that node's
        diagnostics where several nodes publish them.
        """
        self.node = node
        self.namespace = namespace
        self.outputs = tuple(outputs)
        self.compressed = compressed
        self.node_name = node_name
        topic = input_topic(compressed)
        self.publisher = node.create_publisher(topic.type, topic.under(namespace),
                                               client_input_qos(reliable))
        self.records: dict[int, FrameRecord] = {}
        self.label_info: list = []
        self._room: dict[str, float] = {output: float('inf') for output in self.outputs}
        self._room.update(keep_at_most or {})
        self._probes: dict[int, set[str]] = collections.defaultdict(set)
        self.statuses: list = []  # the node's DiagnosticStatus messages, oldest first
        self._baseline: dict[str, int] = {}
        self._own_node = False
        self._subscriptions = [
            node.create_subscription(PUBLISHED[output].type, PUBLISHED[output].under(namespace),
                                     self._collector(output), CLIENT_OUTPUT_QOS, raw=True)
            for output in self.outputs]
        self._subscriptions += [
            node.create_subscription(LABEL_INFO.type, LABEL_INFO.under(namespace),
                                     self.label_info.append, LABEL_INFO_QOS),
            node.create_subscription(DIAGNOSTICS.type, DIAGNOSTICS.name, self._on_diagnostics,
                                     DIAGNOSTICS_QOS)]

    @classmethod
    def on_own_node(cls, name: str, **options: Any) -> NodeClient:
        """A client on a fresh rclpy node named `name`, which `close()` destroys."""
        client = cls(rclpy.create_node(name), **options)
        client._own_node = True
        return client

    def _collector(self, output: str) -> Callable[[bytes], None]:
        """Time an output's messages; deserialize only the ones kept.

        Outputs arrive serialized and are timed from their stamp: a 640x480 overlay costs a
        monitor about 1 ms to deserialize.
        """
        kind = PUBLISHED[output].type

        def collect(data: bytes) -> None:
            key = stamp_key_of(data)
            if key >= _PROBE_KEYS:
                self._probes[key].add(output)
                return
            record = self.records.get(key)
            if record is None or output in record.arrived_at:
                return
            record.arrived_at[output] = time.time()
            if self._room[output] > 0:
                self._room[output] -= 1
                record.answers[output] = deserialize_message(data, kind)
        return collect

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if self.node_name in (None, status.hardware_id):
                self.statuses.append(status)

    # ---- connection ----------------------------------------------------------------------
    def connect(self, timeout: float = 120.0, node_proc: NodeUnderTest | None = None,
                zero_counters: bool = False) -> None:
        """Return once the node answers a probe frame on every collected output.

        Its latched label_info has then arrived too (it may come after the answers); without
        outputs, return once the node subscribes our input. Raises if `node_proc` exits or
        `timeout` passes first. `zero_counters` then waits for the node's next diagnostics and
        counts from there, so the probes stay out of the counts.
        """
        deadline = time.monotonic() + timeout
        topics = [self.node.resolve_topic_name(PUBLISHED[output].under(self.namespace))
                  for output in self.outputs]
        self._await(lambda: self.publisher.get_subscription_count() > 0 and
                    all(self.node.count_publishers(topic) for topic in topics),
                    deadline, node_proc, 'discovery')
        if self.outputs:
            probe = _probe_frame(self.compressed)
            for index in itertools.count():
                key = set_stamp(probe.header, _PROBE_KEYS + index)
                self.publisher.publish(probe)
                if self.spin_until(lambda: self._probes[key].issuperset(self.outputs), 0.5):
                    break
                self._check(deadline, node_proc, 'an answer to a probe frame')
            self._probes.clear()
            self._await(lambda: bool(self.label_info), deadline, node_proc, 'label_info')
        if zero_counters:  # a status sent before the last probe was counted has arrived by then
            self.spin_for(0.1)
            seen = len(self.statuses)
            self._await(lambda: len(self.statuses) > seen, deadline, node_proc, 'diagnostics')
            self._baseline = {k: int(v) for k, v in self._latest().items() if is_count(k)}

    @staticmethod
    def _check(deadline: float, node_proc: NodeUnderTest | None, what: str) -> None:
        if node_proc is not None and node_proc.proc.poll() is not None:
            raise RuntimeError(f'node exited while waiting for {what}; see {node_proc.log_path}')
        if time.monotonic() > deadline:
            raise TimeoutError(f'no {what} from the node in time')

    def _await(self, predicate: Callable[[], bool], deadline: float,
               node_proc: NodeUnderTest | None, what: str) -> None:
        while not self.spin_until(predicate, 0.1):
            self._check(deadline, node_proc, what)

    def close(self) -> None:
        """Destroy what this client created (its node too, when it is its own)."""
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self.node.destroy_publisher(self.publisher)
        if self._own_node:
            self.node.destroy_node()

    # ---- spinning and figures ------------------------------------------------------------
    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Handle callbacks until `predicate()` holds (True) or `timeout` s passed (False)."""
        end = time.monotonic() + timeout
        while not predicate():
            left = end - time.monotonic()
            if left <= 0:
                return False
            rclpy.spin_once(self.node, timeout_sec=min(0.01, left))
        return True

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def answered(self, output: str = 'mask') -> int:
        """Recorded frames answered on `output` so far."""
        return sum(output in record.arrived_at for record in self.records.values())

    def _latest(self) -> dict[str, str]:
        return {kv.key: kv.value for kv in self.statuses[-1].values} if self.statuses else {}

    def figures(self) -> dict[str, str]:
        """The node's latest diagnostics values, frame counts from `connect(zero_counters)`."""
        return {k: str(int(v) - self._baseline.get(k, 0)) if is_count(k) else v
                for k, v in self._latest().items()}

    def counters(self) -> dict[str, int]:
        """The frame counts among `figures()` (FrameStats: received, answered, ...)."""
        return {k: int(v) for k, v in self.figures().items() if is_count(k)}

    # ---- frames --------------------------------------------------------------------------
    def send(self, payload, key: int | None = None) -> FrameRecord:
        """Publish one frame: a message, or serialized CDR bytes with the `key` of its stamp."""
        record = FrameRecord(stamp_key(payload.header.stamp) if key is None else key,
                             time.time())
        self.records[record.key] = record
        self.publisher.publish(payload)
        return record

    def request(self, msg, timeout: float = 20.0) -> dict[str, Any]:
        """Publish `msg` and return its answer on every collected output, by output name."""
        record = self.send(msg)
        if not self.spin_until(lambda: len(record.arrived_at) == len(self.outputs), timeout):
            raise TimeoutError(f'no complete answer for stamp key {record.key}: answered '
                               f'{sorted(record.arrived_at)} of {list(self.outputs)}')
        return record.answers

    def stream(self, frames: Iterable[tuple[int, Any]], rate_hz: float | None,
               lockstep_timeout: float = 5.0, on_frame: Callable[[int], None] | None = None,
               restamp: Callable[[int, Any], int] | None = None) -> None:
        """Send every (key, payload): at `rate_hz` (None = lockstep: wait for each mask).

        `restamp(key, payload)` may give the payload a fresh stamp and return its key
        (a live camera stamps frames when it takes them).
        """
        start = time.time()
        for index, (key, payload) in enumerate(frames):
            if rate_hz is not None:
                delay = start + index / rate_hz - time.time()
                if delay > 0:
                    self.spin_for(delay)
            if restamp is not None:
                key = restamp(key, payload)
            record = self.send(payload, key)
            if rate_hz is None:
                self.spin_until(lambda: record.mask_at is not None, lockstep_timeout)
                self.spin_for(0.002)  # detections follow the mask closely
            else:
                rclpy.spin_once(self.node, timeout_sec=0)
            if on_frame is not None:
                on_frame(index + 1)
        self.spin_for(1.5)  # late answers

    def stream_camera(self, messages: list, rate_hz: float, total: int,
                      on_frame: Callable[[int], None] | None = None) -> dict[int, int]:
        """Publish prebuilt messages round-robin like a live camera: fresh stamps at `rate_hz`.

        Returns stamp key -> index of the message sent with that stamp.
        """
        sent_index: dict[int, int] = {}

        def restamp(index: int, msg) -> int:
            key = set_stamp(msg.header, time.time_ns())
            sent_index[key] = index
            return key

        frames = ((i % len(messages), messages[i % len(messages)]) for i in range(total))
        self.stream(frames, rate_hz, on_frame=on_frame, restamp=restamp)
        return sent_index
