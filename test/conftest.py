"""Session-wide ROS isolation: own DDS domain, local discovery, logs in a temp dir."""

import os

import pytest

from ros_harness import isolated_ros_env


@pytest.fixture(scope='session')
def ros_env(tmp_path_factory):
    """Environment for node processes; this process joins the same domain through rclpy."""
    import rclpy

    env = isolated_ros_env(str(tmp_path_factory.mktemp('ros_log')))
    os.environ.update(env)
    rclpy.init()
    yield env
    rclpy.try_shutdown()
