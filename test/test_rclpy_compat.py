"""rclpy_compat on the installed rclpy (Kilted in .venv, Jazzy in .venv-jazzy), real nodes.

The Humble paths run here too: the post-set emulation is called directly, and under rclpy cut
down to Humble's API in test_humble_rclpy.py.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import rclpy
from ros_harness import REPO
from rcl_interfaces.msg import ParameterType, ParameterValue, SetParametersResult
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from jetson_seg.ros import rclpy_compat
from jetson_seg.ros.rclpy_compat import (add_post_set_parameters_callback, apply_env,
                                         emulate_post_set_parameters_callback,
                                         limit_discovery_to_localhost)

NAMES = itertools.count()
REGISTER = {'rclpy': add_post_set_parameters_callback,
            'emulated': emulate_post_set_parameters_callback}


@pytest.fixture
def rate_node(ros_env):
    """A node with parameters rate (refused below 0) and name."""
    node = rclpy.create_node(f'compat_node_{next(NAMES)}')
    node.declare_parameter('rate', 1.0)
    node.declare_parameter('name', 'a')
    node.add_on_set_parameters_callback(lambda params: SetParametersResult(
        successful=all(p.name != 'rate' or p.value >= 0 for p in params), reason='rate < 0'))
    yield node
    node.destroy_node()


@pytest.mark.parametrize('register', REGISTER.values(), ids=list(REGISTER))
def test_post_set_callbacks_see_stored_values_and_skip_refused_ones(rate_node, register):
    seen: list[tuple[str, object]] = []
    order: list[str] = []
    register(rate_node, lambda params: order.append('first'))
    register(rate_node, lambda params: seen.extend(
        (p.name, rate_node.get_parameter(p.name).value) for p in params) or order.append('last'))

    assert rate_node.set_parameters([Parameter('rate', value=5.0)])[0].successful
    assert seen == [('rate', 5.0)]  # called once the value is stored
    assert order == ['last', 'first']  # the newest callback first, as rclpy orders them
    assert not rate_node.set_parameters([Parameter('rate', value=-1.0)])[0].successful
    assert seen == [('rate', 5.0)]  # a refused value calls nothing
    assert rate_node.set_parameters_atomically([Parameter('rate', value=7.0),
                                                Parameter('name', value='b')]).successful
    assert seen[1:] == [('rate', 7.0), ('name', 'b')]
    results = rate_node.set_parameters([Parameter('rate', value=-2.0),
                                        Parameter('name', value='c')])
    assert [r.successful for r in results] == [False, True]
    assert seen[3:] == [('name', 'c')]


@pytest.mark.parametrize('register', REGISTER.values(), ids=list(REGISTER))
def test_post_set_callbacks_run_for_the_parameter_service(rate_node, register):
    """Humble's and Kilted's parameter services both call the node's set_parameters_atomically."""
    seen: list[float] = []
    register(rate_node, lambda params: seen.extend(rate_node.get_parameter(p.name).value
                                                   for p in params))
    caller = rclpy.create_node('compat_caller')
    executor = SingleThreadedExecutor()
    executor.add_node(rate_node)
    executor.add_node(caller)
    client = caller.create_client(SetParameters, f'{rate_node.get_name()}/set_parameters')
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        for value in (3.0, -3.0):
            future = client.call_async(SetParameters.Request(parameters=[ParameterMsg(
                name='rate', value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                  double_value=value))]))
            executor.spin_until_future_complete(future, timeout_sec=10.0)
            assert future.result().results[0].successful == (value >= 0)
        assert seen == [3.0]
    finally:
        executor.shutdown()
        caller.destroy_node()


def test_executor_is_events_where_rclpy_has_it(ros_env):  # executors need an rclpy context
    events = rclpy_compat.events_executor_class()
    chosen = rclpy_compat.executor('events')
    assert type(chosen).__name__ == ('EventsExecutor' if events else 'SingleThreadedExecutor')
    assert events is not None  # Kilted and Jazzy 7.1.4+: the test venvs have it
    chosen.shutdown()
    plain = rclpy_compat.executor('single_threaded')
    assert isinstance(plain, SingleThreadedExecutor)
    plain.shutdown()


def test_local_discovery_is_the_range_variable_on_iron_and_later():
    assert rclpy_compat.IRON_OR_NEWER  # Kilted's and Jazzy's rclpy
    env = {'ROS_LOCALHOST_ONLY': '1', 'OTHER': 'x'}
    limit_discovery_to_localhost(env)
    assert env == {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'OTHER': 'x'}
    shell = subprocess.run([sys.executable, '-m', 'jetson_seg.ros.rclpy_compat', '--shell'],
                           capture_output=True, text=True, check=True).stdout
    assert shell.splitlines() == ['export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST',
                                  'unset ROS_LOCALHOST_ONLY']
    reader = 'FASTDDS' if rclpy_compat.fastdds_major() == 3 else 'FASTRTPS'
    profile = rclpy_compat.fastdds_profile_env('/p.xml')
    assert profile[f'{reader}_DEFAULT_PROFILES_FILE'] == '/p.xml' and None in profile.values()


PROBE = """
import os, rclpy
rclpy.init()
node = rclpy.create_node('probe')
node.get_logger().info('up')
maps = [line.split()[-1] for line in open('/proc/self/maps') if '/dev/shm/fast' in line]
print('largest segment', max(os.path.getsize(path) for path in maps))
node.destroy_node()
rclpy.shutdown()
"""


def test_a_process_with_the_isolation_env_loads_the_profile_and_warns_about_nothing(ros_env):
    """Each distro gets the variables it reads, and only those.

    Jazzy honours ROS_LOCALHOST_ONLY with two warnings per process; Fast DDS 2 (Jazzy) reads
    only FASTRTPS_DEFAULT_PROFILES_FILE, Fast DDS 3 (Kilted) warns about it. Both names and
    ROS_LOCALHOST_ONLY are set before, as a user's shell might have them.
    """
    profile = str(REPO / 'config' / 'fastdds_large_images.xml')
    env = {**os.environ, 'ROS_LOCALHOST_ONLY': '1', 'FASTDDS_DEFAULT_PROFILES_FILE': profile,
           'FASTRTPS_DEFAULT_PROFILES_FILE': profile}
    apply_env(env, {**rclpy_compat.local_discovery_env(),
                    **rclpy_compat.fastdds_profile_env(profile)})
    out = subprocess.run([sys.executable, '-c', PROBE], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'up' in out.stderr and 'WARN' not in out.stderr, out.stderr
    assert int(out.stdout.split('largest segment')[1]) >= 16 * 2**20  # the profile's, not 512 KiB
