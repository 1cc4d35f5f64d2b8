"""Test helpers: run the node in its own process (talk to it with replay.NodeClient)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import rclpy

from jetson_seg.tools.replay import NodeUnderTest

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


def call_service(node, srv_type, name: str, request, timeout: float = 30.0):
    """Call a service of another process from `node` and return the response."""
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), name
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    node.destroy_client(client)
    assert future.done(), name
    return future.result()
