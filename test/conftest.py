"""Session-wide ROS isolation: own DDS domain, local discovery, logs in a temp dir."""

import os

import pytest

from jetson_seg.tools.replay import isolated_env


@pytest.fixture(scope='session')
def ros_env(tmp_path_factory):
    """Environment for node processes; this process joins the same domain through rclpy."""
    import rclpy

    os.environ['ROS_LOG_DIR'] = str(tmp_path_factory.mktemp('ros_log'))
    os.environ['ROS_HOME'] = os.environ['ROS_LOG_DIR']
    env = isolated_env(int(os.environ.get('ROS_DOMAIN_ID', 100 + os.getpid() % 100)))
    rclpy.init()
    yield env
    rclpy.try_shutdown()
