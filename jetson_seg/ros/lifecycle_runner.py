"""A lifecycle node's process: signals, executor, autostart, spinning and an orderly stop.

SIGINT and SIGTERM only set a flag (ros/shutdown.py) that the loop polls, so a transition still
running finishes or is abandoned cleanly and the process exits 0; bad parameters exit 2.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Protocol

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

from jetson_seg.ros.rclpy_compat import executor as make_executor
from jetson_seg.ros.parameter_declaration import PARAM_ERRORS
from jetson_seg.ros.shutdown import POLL_S, ShutdownRequest


class RunnableNode(Protocol):
    """A LifecycleNode with parameters `executor` and `autostart` and a worker to stop first."""

    def stop_worker(self) -> None:
        """Stop the node's own threads before the executor and the node go."""


def run_lifecycle_node(make_node: Callable[[ShutdownRequest], RunnableNode], name: str,
                       args: list[str] | None = None) -> int:
    """Run a node until SIGINT/SIGTERM; the process exit code.

    The node configures and activates itself unless its autostart parameter is false.
    """
    shutdown = ShutdownRequest().install()
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = make_node(shutdown)
    except PARAM_ERRORS as exc:
        print(f'{name}: invalid parameter: {exc}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = make_executor(node.get_parameter('executor').value)
    node.get_logger().info(f'executor: {type(executor).__name__}')
    executor.add_node(node)
    try:
        if node.get_parameter('autostart').value and not shutdown.requested and \
                node.trigger_configure() == TransitionCallbackReturn.SUCCESS and \
                not shutdown.requested:
            node.trigger_activate()
        while not shutdown.requested:
            executor.spin_once(timeout_sec=POLL_S)
    except ExternalShutdownException:
        pass
    finally:
        node.get_logger().info(f'stopping ({shutdown.signal_name or "context shut down"})')
        node.stop_worker()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    if shutdown.abandoned:  # a model load still running: do not wait for it at interpreter exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
