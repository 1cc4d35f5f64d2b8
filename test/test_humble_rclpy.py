"""The node on Humble's rclpy API: rclpy cut down to what the humble branch defines, over DDS.

No Humble wheels exist. humble_rclpy.py hides, from the code under test, every rclpy module,
attribute and keyword argument that data/rclpy_humble_api.json (read from ros2/rclpy's humble
branch) does not list, then runs the real node in its own process; the test drives it over
Fast DDS: configure and activate (autostart), masks, a runtime parameter change accepted and
one refused with its reason, SIGINT ending it with exit code 0.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_msgs import image_from_rgb, stamped
from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from ros_harness import REPO, NodeProcess, call_service
from shm import fastdds_files, leaked, segments_of

from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import CLASS_COLORS

LAUNCHER = Path(__file__).resolve().parent / 'humble_rclpy.py'
API = json.loads((Path(__file__).resolve().parent / 'data' / 'rclpy_humble_api.json')
                 .read_text())
HUMBLE = [sys.executable, str(LAUNCHER), '--']
NAMESPACE = '/humble'
TARGET = f'{NAMESPACE}/segmentation_node'
STAMPS = itertools.count(90_000)


def _under_humble(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HUMBLE, sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)


def test_the_api_data_names_its_source_and_lacks_what_humble_lacks():
    source, modules = API['source'], API['modules']
    assert source['repository'] == 'https://github.com/ros2/rclpy'
    assert source['branch'] == 'humble' and re.fullmatch(r'[0-9a-f]{40}', source['commit'])
    assert source['rclpy_version'].startswith('3.3.')
    node = modules['rclpy.node']['classes']['Node']
    assert 'add_on_set_parameters_callback' in node['attributes']
    for later in ('add_post_set_parameters_callback', 'add_pre_set_parameters_callback',
                  'list_parameters', 'wait_for_node'):
        assert later not in node['attributes']
    assert 'rclpy.lifecycle' in modules and 'rclpy.experimental' not in modules


def test_the_cut_down_rclpy_refuses_what_humble_lacks():
    probe = _under_humble(
        'import rclpy\n'
        'from rclpy.node import Node\n'
        'from rclpy.lifecycle import LifecycleNode\n'
        'assert not hasattr(Node, "add_post_set_parameters_callback")\n'
        'assert not hasattr(LifecycleNode, "add_pre_set_parameters_callback")\n'
        'assert not hasattr(Node, "wait_for_node") and not hasattr(rclpy, "experimental")\n'
        'assert hasattr(LifecycleNode, "add_on_set_parameters_callback")\n'
        'rclpy.init(args=[])\n'
        'node = Node("probe")\n'
        'try:\n'
        '    node.create_timer(1.0, print, autostart=False)\n'
        'except TypeError as exc:\n'
        '    print("refused:", exc)\n'
        'node.destroy_node()\n'
        'rclpy.shutdown()\n'
        'from rclpy.experimental import EventsExecutor\n')
    assert "refused: Node.create_timer() got an unexpected keyword argument 'autostart'" \
        in probe.stdout, probe.stderr
    assert "No module named 'rclpy.experimental' (not in Humble's rclpy)" in probe.stderr
    assert probe.stderr.count('Traceback') == 1 and 'AssertionError' not in probe.stderr


def test_the_compat_module_takes_the_humble_paths():
    described = subprocess.run([*HUMBLE, sys.executable, '-m', 'jetson_seg.ros.rclpy_compat'],
                               capture_output=True, text=True, timeout=120)
    assert described.returncode == 0, described.stderr
    assert 'post-set parameter callbacks: emulated (Humble)' in described.stdout
    assert 'EventsExecutor: no (SingleThreadedExecutor)' in described.stdout
    assert 'ROS_LOCALHOST_ONLY=1' in described.stdout


def test_the_optimizer_node_checks_its_parameters_on_humbles_api(ros_env, tmp_path):
    """Its node, parameter declarations and validator run before any conversion starts."""
    run = subprocess.run([*HUMBLE, sys.executable, '-m', 'jetson_seg.ros.optimizer_node',
                          '--ros-args', '-p', 'targets:=[bogus]', '-p', f'output_dir:={tmp_path}'],
                         capture_output=True, text=True, timeout=120, env=ros_env)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "invalid parameter: targets items must be in" in run.stderr + run.stdout
    assert 'Traceback' not in run.stderr


def _rclpy_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of every rclpy import in a file not guarded by ImportError."""
    tree = ast.parse(path.read_text())
    guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.Try) and any(
        isinstance(h.type, ast.Name) and h.type.id in ('ImportError', 'ModuleNotFoundError')
        for h in block.handlers) for stmt in block.body for node in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and \
                (node.module or '').split('.')[0] == 'rclpy':
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split('.')[0] == 'rclpy']
    return found


def test_every_rclpy_import_of_the_package_exists_in_humble():
    """Also the tools and the optimizer node, which the node test below does not run."""
    modules = API['modules']
    missing = []
    for path in sorted((REPO / 'jetson_seg').rglob('*.py')):
        for module, name, line in _rclpy_imports(path):
            where = f'{path.relative_to(REPO)}:{line}'
            if module not in modules:
                missing.append(f'{where} {module}')
                continue
            subs = {m.rsplit('.', 1)[1] for m in modules if m.startswith(module + '.')}
            if name is not None and name not in set(modules[module]['names']) | subs:
                missing.append(f'{where} {module}.{name}')
    assert not missing, f"imports Humble's rclpy lacks: {missing}"


@pytest.fixture(scope='module')
def humble_node(ros_env):
    """The node with the packaged default model, under rclpy cut down to Humble's API."""
    before = fastdds_files()
    node = NodeProcess({'threads': 1, 'model_path': "''"}, ros_env, namespace=NAMESPACE,
                       wrapper=HUMBLE)
    node.wait_for_output('active: listening')
    node.own_segments = segments_of(node.proc.pid) - before
    yield node
    node.stop()


def _set(client: NodeClient, name: str, value: float):
    param = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                      double_value=value))
    return call_service(client.node, SetParameters, f'{TARGET}/set_parameters',
                        SetParameters.Request(parameters=[param])).results[0]


def _big_disc() -> np.ndarray:
    image = np.full((480, 640, 3), 128, np.uint8)
    cv2.circle(image, (320, 240), 90, (220, 30, 30), -1, cv2.LINE_AA)
    return image


def test_the_node_starts_on_humbles_api(humble_node):
    assert 'humble_rclpy: rclpy cut down to Humble 3.3.' in humble_node.text
    assert 'executor: SingleThreadedExecutor' in humble_node.text  # no EventsExecutor
    assert 'configured: engine=litert' in humble_node.text, humble_node.text
    client = NodeClient.on_own_node('humble_state', namespace=NAMESPACE, outputs=())
    try:
        state = call_service(client.node, GetState, f'{TARGET}/get_state', GetState.Request())
        assert state.current_state.label == 'active'
    finally:
        client.close()


def test_masks_and_a_runtime_parameter_change(humble_node):
    """overlay_alpha reaches the pipeline only through the (emulated) post-set callback."""
    client = NodeClient.on_own_node('humble_client', namespace=NAMESPACE,
                                    outputs=('mask', 'overlay', 'detections'))
    try:
        client.connect(node_proc=humble_node)
        bad = _set(client, 'overlay_alpha', 1.7)
        assert not bad.successful and 'overlay_alpha' in bad.reason, bad.reason
        got = call_service(client.node, GetParameters, f'{TARGET}/get_parameters',
                           GetParameters.Request(names=['overlay_alpha']))
        assert got.values[0].double_value == 0.5  # the refused value was not stored
        image, palette = _big_disc(), np.array(CLASS_COLORS, np.uint8)
        for alpha in (1.0, 0.0):
            assert _set(client, 'overlay_alpha', alpha).successful
            answer = client.request(stamped(image_from_rgb(image, 'rgb8'), next(STAMPS)))
            mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(480, 640)
            assert mask[240, 320] == 1 and mask[20, 20] == 0  # the disc, on background
            assert [d.results[0].hypothesis.class_id for d in answer['detections'].detections] \
                == ['1']
            overlay = np.frombuffer(answer['overlay'].data, np.uint8).reshape(480, 640, 3)
            expected = image.copy()
            if alpha == 1.0:  # objects fully in their class colour
                expected[mask > 0] = palette[mask[mask > 0]]
            np.testing.assert_array_equal(overlay, expected)
        assert _set(client, 'overlay_alpha', 0.5).successful
    finally:
        client.close()


def test_sigint_ends_it_cleanly(humble_node):
    humble_node.proc.send_signal(signal.SIGINT)
    code = humble_node.proc.wait(timeout=30)
    assert code == 0, humble_node.text[-3000:]
    assert 'stopping (SIGINT)' in humble_node.text
    assert 'Traceback' not in humble_node.text, humble_node.text[-3000:]
    assert humble_node.own_segments and not leaked(humble_node.own_segments)
