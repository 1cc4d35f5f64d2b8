"""Session-wide ROS isolation (own DDS domain, local discovery, logs in a temp dir) and markers.

Every test gets one of the markers setup.cfg declares: `dds` where it talks to node processes
(it uses the ros_env fixture), `slow` where its module runs the optimizer, training, a colcon
build or pip's resolver, `unit` for the rest. `make test` runs them all;
`bash scripts/run_tests.sh -m unit` runs the fast core tests alone. The node processes several
test modules serve from (raw_node, single_node, robot_node) are made once per module.
"""

import os

import pytest

from jetson_seg.tools.node_client import NodeClient, isolated_env


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


def _serving(params: dict[str, object], env: dict[str, str], namespace: str = ''):
    """A node process serving from the start, stopped (exit 0) after the module's tests."""
    from ros_harness import NodeProcess

    node = NodeProcess(params, env, namespace=namespace)
    node.wait_for_output('active: listening')
    yield node
    assert node.stop() == 0, node.text


@pytest.fixture(scope='module')
def raw_node(ros_env):
    """A node with the defaults in the root namespace."""
    yield from _serving({'threads': 1}, ros_env)


@pytest.fixture(scope='module')
def client(raw_node):
    """A client of raw_node, connected (it has seen the node answer)."""
    cl = NodeClient.on_own_node('test_client', node_name='/segmentation_node')
    cl.connect()
    yield cl
    cl.close()


@pytest.fixture(scope='module')
def single_node(ros_env):
    """A node with the defaults under /behaviour, for tests that change its parameters."""
    yield from _serving({'threads': 1}, ros_env, namespace='/behaviour')


@pytest.fixture(scope='module')
def robot_node(ros_env):
    """A node set up like a robot's, under ros_harness.ROBOT_NS.

    Its image input is made reliable and deep through the standard qos_overrides parameters;
    stale after 1 s, diagnostics every 0.2 s.
    """
    from ros_harness import ROBOT_NS as NS

    yield from _serving({
        'threads': 1, 'stale_after': 1.0, 'diagnostics_period': 0.2,
        f'qos_overrides.{NS}/image.subscription.reliability': 'reliable',
        f'qos_overrides.{NS}/image.subscription.depth': 50,
        f'qos_overrides.{NS}/segmentation/color_mask.publisher.reliability': 'best_effort',
    }, ros_env, namespace=NS)


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
