"""Session-wide ROS isolation (own DDS domain, local discovery, logs in a temp dir) and markers.

Every test gets one of the markers setup.cfg declares: `dds` where it talks to node processes
(it uses the ros_env fixture), `slow` where its module runs the optimizer, training, a colcon
build or pip's resolver, `unit` for the rest. `make test` runs them all;
`bash scripts/run_tests.sh -m unit` runs the fast core tests alone.
"""

import os

import pytest

from jetson_seg.tools.node_client import isolated_env


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


#: Modules whose tests convert models, train, build a workspace or ask the package index.
SLOW_MODULES = frozenset({'test_optimizer', 'test_optimizer_signals', 'test_optimizer_output_dir',
                          'test_own_models', 'test_onnx', 'test_onnx_source', 'test_training',
                          'test_colcon', 'test_requirements', 'test_robustness'})


def pytest_collection_modifyitems(items) -> None:
    """Mark each test dds, slow or unit (see the module docstring)."""
    for item in items:
        if 'ros_env' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.dds)
        if item.module.__name__.rsplit('.', 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if not (item.get_closest_marker('dds') or item.get_closest_marker('slow')):
            item.add_marker(pytest.mark.unit)
