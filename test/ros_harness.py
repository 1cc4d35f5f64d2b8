"""Test helpers: run the node in its own process and talk to it over Fast DDS from this one."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from jetson_seg.replay import NodeUnderTest

REPO = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO / 'config' / 'segmentation.yaml'


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
        self.spin_until(lambda: False, 0.3)  # let the outputs' matching settle both ways

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
