"""Test helpers for node processes: run, talk to, set parameters of, read diagnostics of.

The node runs in its own process (talk to it with node_client.NodeClient); big_disc is a frame
every node test can count on being segmented.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from image_msgs import image_from_rgb
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from jetson_seg.tools.node_client import NodeClient, NodeUnderTest

REPO = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO / 'config' / 'segmentation.yaml'
#: The robot_node fixture's namespace and node (conftest.py).
ROBOT_NS = '/robot'
ROBOT_TARGET = f'{ROBOT_NS}/segmentation_node'


class NodeProcess(NodeUnderTest):
    """The segmentation node in its own process, with its output readable for assertions."""

    def __init__(self, params: dict[str, object], env: dict[str, str], namespace: str = '',
                 params_file: Path | None = PARAMS_FILE, wrapper: Sequence[str] = ()) -> None:
        log = Path(tempfile.mkstemp(prefix='node_', suffix='.log', dir=env['ROS_LOG_DIR'])[1])
        super().__init__(params, log, env, namespace, params_file, wrapper)

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


#: Calls that may be sent again: a lost response costs nothing but a retry (setting the same
#: parameter values twice gives the same result; a Jazzy run lost one such response under load).
RETRY_SAFE = ('GetState', 'GetParameters', 'ListParameters', 'DescribeParameters',
              'SetParameters')


def call_service(node, srv_type, name: str, request, timeout: float = 30.0):
    """Call a service of another process from `node` and return the response.

    Fast DDS can report a service available before its response path to this client has
    matched, and a response sent then is lost (seen once in five full test runs): queries are asked
    again; a state change is sent once, after a short wait for discovery to settle.
    """
    client = node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=timeout), name
        attempts = 3 if srv_type.__name__ in RETRY_SAFE else 1
        if attempts == 1:
            rclpy.spin_once(node, timeout_sec=0.2)
        for _ in range(attempts):
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=timeout / attempts)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError(f'{name}: no response in {timeout} s')
    finally:
        node.destroy_client(client)


def set_parameter(node, target: str, name: str, value):
    """Set a string or float parameter of node `target` from `node`; the SetParameters result."""
    kind = {str: (ParameterType.PARAMETER_STRING, 'string_value'),
            float: (ParameterType.PARAMETER_DOUBLE, 'double_value')}[type(value)]
    param = Parameter(name=name, value=ParameterValue(type=kind[0], **{kind[1]: value}))
    return call_service(node, SetParameters, f'{target}/set_parameters',
                        SetParameters.Request(parameters=[param])).results[0]


def big_disc(width: int = 640, height: int = 480) -> np.ndarray:
    """A frame the model segments without doubt: one large solid disc on grey."""
    image = np.full((height, width, 3), 128, np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 5, (220, 30, 30), -1, cv2.LINE_AA)
    return image


def robot_client(name: str, outputs: tuple[str, ...]) -> NodeClient:
    """A client of the robot_node fixture's node, whose input the overrides made reliable."""
    return NodeClient.on_own_node(name, namespace=ROBOT_NS, outputs=outputs, reliable=True,
                                  node_name=ROBOT_TARGET)


def wait_status(client: NodeClient, predicate, timeout: float = 20.0,
                after: int = 0) -> DiagnosticStatus:
    """The first status of the client's node, from number `after` on, that fits."""
    found: list[DiagnosticStatus] = []

    def seen() -> bool:
        found[:] = [s for s in client.statuses[after:] if predicate(s)][:1]
        return bool(found)
    assert client.spin_until(seen, timeout), [(s.level, s.message)
                                              for s in client.statuses[-5:]]
    return found[0]


def stream_until(client: NodeClient, predicate) -> DiagnosticStatus:
    """Send freshly stamped frames (~10 Hz) until a status of the client's node fits."""
    image = image_from_rgb(big_disc(), 'rgb8')
    start = len(client.statuses)
    for _ in range(200):
        image.header.stamp = client.node.get_clock().now().to_msg()
        client.publisher.publish(image)
        if client.spin_until(lambda: any(predicate(s) for s in client.statuses[start:]), 0.1):
            break
    return wait_status(client, predicate, timeout=1.0, after=start)


def status_value(status: DiagnosticStatus, key: str) -> str:
    return next(kv.value for kv in status.values if kv.key == key)
