"""Test helpers: run the node in its own process and talk to it over Fast DDS from this one."""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from jetson_seg.tools.replay import NodeUnderTest

REPO = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO / 'config' / 'segmentation.yaml'
PROBE_SEC = 2**31 - 1  # stamp seconds of connection probes, far from any test frame


class NodeProcess(NodeUnderTest):
    """The segmentation node in its own process, with its output readable for assertions."""

    def __init__(self, params: dict[str, object], env: dict[str, str], namespace: str = '',
                 params_file: Path | None = PARAMS_FILE) -> None:
        log = Path(tempfile.mkstemp(prefix='node_', suffix='.log', dir=env['ROS_LOG_DIR'])[1])
        super().__init__(params, log, env, namespace, params_file)

    @property
    def text(self) -> str:
        return self.log_path.read_text()

    def wait_for_output(self, needle: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f'node exited ({self.proc.returncode}):\n{self.text}')
            time.sleep(0.1)
        raise AssertionError(f'{needle!r} not seen in {timeout} s:\n{self.text}')


class SegmentationClient:
    """Publishes frames to a node's input and collects its outputs, matched by header stamp."""

    OUTPUTS = {'mask': Image, 'color_mask': Image, 'overlay': Image,
               'detections': Detection2DArray}

    def __init__(self, name: str, namespace: str = '', reliable_input: bool = False,
                 outputs: tuple[str, ...] = ('mask', 'color_mask', 'overlay', 'detections')
                 ) -> None:
        self.node = rclpy.create_node(name, namespace=namespace)
        in_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if reliable_input
                            else ReliabilityPolicy.BEST_EFFORT)
        self.image_pub = self.node.create_publisher(Image, 'image', in_qos)
        self.compressed_pub = self.node.create_publisher(CompressedImage, 'image/compressed',
                                                         in_qos)
        self.received: dict[str, dict[tuple[int, int], object]] = {k: {} for k in outputs}
        self.label_info: list[LabelInfo] = []
        self.diagnostics: list[DiagnosticArray] = []
        out_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for key in outputs:
            self.node.create_subscription(self.OUTPUTS[key], f'segmentation/{key}',
                                          self._store(key), out_qos)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(LabelInfo, 'segmentation/label_info',
                                      self.label_info.append, latched)
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics.append, 10)

    def _store(self, key: str):
        def callback(msg) -> None:
            self.received[key][(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
        return callback

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return predicate()

    def wait_connected(self, compressed: bool = False, timeout: float = 30.0) -> None:
        pub = self.compressed_pub if compressed else self.image_pub
        prefix = self.node.get_namespace().rstrip('/')

        def connected() -> bool:
            return pub.get_subscription_count() > 0 and all(
                self.node.count_publishers(f'{prefix}/segmentation/{k}') > 0
                for k in self.received)

        ok = self.spin_until(connected, timeout)
        assert ok, 'node did not connect to the test client'
        if self.received:
            self._probe_until_answered(compressed, timeout)

    def _probe_until_answered(self, compressed: bool, timeout: float) -> None:
        """Send small frames until one is answered on every output, then forget them.

        Discovery is asymmetric: the node may see our input before its publishers match our
        subscriptions, and a frame whose outputs nobody wants (yet) is skipped, not queued.
        """
        if compressed:
            probe = CompressedImage(format='png',
                                    data=cv2.imencode('.png', np.zeros((48, 64), np.uint8))[1]
                                    .tobytes())
        else:
            probe = Image(height=48, width=64, encoding='rgb8', step=64 * 3,
                          data=bytes(64 * 48 * 3))
        pub = self.compressed_pub if compressed else self.image_pub
        deadline = time.monotonic() + timeout
        for index in itertools.count():
            probe.header.stamp.sec, probe.header.stamp.nanosec = PROBE_SEC, index
            key = (PROBE_SEC, index)
            pub.publish(probe)
            if self.spin_until(lambda: all(key in got for got in self.received.values()), 0.5):
                break
            assert time.monotonic() < deadline, 'node never answered a probe frame'
        for got in self.received.values():
            for stamp in [k for k in got if k[0] == PROBE_SEC]:
                del got[stamp]

    def request(self, msg, timeout: float = 20.0) -> dict[str, object]:
        """Publish `msg` and wait until every collected output for its stamp has arrived."""
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        pub = self.compressed_pub if isinstance(msg, CompressedImage) else self.image_pub
        pub.publish(msg)
        done = self.spin_until(lambda: all(key in got for got in self.received.values()),
                               timeout)
        assert done, f'no complete answer for stamp {key}: ' + ', '.join(
            f'{k}={key in v}' for k, v in self.received.items())
        return {k: v[key] for k, v in self.received.items()}

    def close(self) -> None:
        self.node.destroy_node()
