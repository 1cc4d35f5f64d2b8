"""Launch files and parameter files, checked statically (launch_ros is not installable here).

The same node command lines run for real in the integration tests, with these params files.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

from jetson_seg.ros.node_parameters import OPTIMIZER_PARAMS, SEGMENTATION_PARAMS, validate

REPO = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((REPO / 'launch').glob('*.launch.py'))


def _entry_points() -> set[str]:
    text = (REPO / 'setup.py').read_text()
    return set(re.findall(r"f'(\w+) = \{PACKAGE\}\.", text))


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and
            getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def _kw(call, key):
    for kw in call.keywords:
        if kw.arg == key and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def test_there_are_launch_files_for_each_job():
    names = {p.name for p in LAUNCH_FILES}
    assert {'segmentation.launch.py', 'optimize.launch.py', 'replay.launch.py'} <= names


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_well_formed(path):
    tree = ast.parse(path.read_text())
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert 'generate_launch_description' in funcs
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names}
    assert {'LaunchDescription', 'Node'} <= imports
    nodes = _calls(tree, 'Node')
    assert nodes
    for node in nodes:
        assert _kw(node, 'package') == 'jetson_seg'
        assert _kw(node, 'executable') in _entry_points()
    declared = {_kw(c, 'name') or c.args[0].value for c in _calls(tree, 'DeclareLaunchArgument')}
    used = {c.args[0].value for c in _calls(tree, 'LaunchConfiguration')}
    assert used <= declared, used - declared
    for call in _calls(tree, 'join'):  # share-relative files must exist in the repository
        parts = [a.value for a in call.args if isinstance(a, ast.Constant)]
        if parts and parts[0] in ('config', 'launch'):
            assert (REPO.joinpath(*parts)).exists(), parts


def _flattened(params: dict, prefix: str = '') -> dict:
    """ROS's reading of nested parameter dicts: tracking: {min_hits: 3} is tracking.min_hits."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flattened(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


@pytest.mark.parametrize('name,specs', [('segmentation.yaml', SEGMENTATION_PARAMS),
                                        ('optimizer.yaml', OPTIMIZER_PARAMS)])
def test_params_file_is_valid_ros_parameters_for_its_node(name, specs):
    data = yaml.safe_load((REPO / 'config' / name).read_text())
    assert list(data) == ['/**'] and list(data['/**']) == ['ros__parameters']
    params = _flattened(data['/**']['ros__parameters'])
    by_name = {s.name: s for s in specs}
    assert set(params) == set(by_name)
    for key, value in params.items():
        assert validate(by_name[key], value) is None, (key, value)


SEGMENTING = [p for p in LAUNCH_FILES if "'segmentation_node'" in p.read_text()]


@pytest.mark.parametrize('path', SEGMENTING, ids=lambda p: p.name)
def test_launch_takes_use_sim_time_and_keeps_the_users_fastdds_profile(path):
    tree = ast.parse(path.read_text())
    declared = {_kw(c, 'name') or c.args[0].value for c in _calls(tree, 'DeclareLaunchArgument')}
    assert 'use_sim_time' in declared
    values = _calls(tree, 'ParameterValue')  # the argument reaches the node as a bool
    assert any(v.args[0].args[0].value == 'use_sim_time' and _kw(v, 'value_type') is None and
               v.keywords[0].value.id == 'bool' for v in values)
    # the package's profile is only EnvironmentVariable's default: a set variable (Fast DDS 3's
    # name or Fast DDS 2's) wins; it is set in the name this Fast DDS reads (rclpy_compat)
    env = _calls(tree, 'EnvironmentVariable')
    assert {e.args[0].value for e in env} == {'FASTDDS_DEFAULT_PROFILES_FILE',
                                              'FASTRTPS_DEFAULT_PROFILES_FILE'}
    assert all(any(k.arg == 'default_value' for k in e.keywords) for e in env)
    assert any(isinstance(n, ast.ImportFrom) and n.module == 'jetson_seg.ros.rclpy_compat' and
               n.names[0].name == 'fastdds_profile_env' for n in ast.walk(tree))
    for call in _calls(tree, 'SetEnvironmentVariable'):
        value = call.args[1]
        assert not isinstance(value, ast.Call) or value.func.id != 'join', \
            'the profile path must not replace a variable the user set'


def test_segmentation_launch_remaps_every_camera_input_with_its_transports():
    """image, camera_info, depth and depth/camera_info, with image/compressed and
    depth/compressedDepth following their base topic as image_transport names them."""
    tree = ast.parse((REPO / 'launch' / 'segmentation.launch.py').read_text())
    (node,) = _calls(tree, 'Node')
    remaps = next(kw.value for kw in node.keywords if kw.arg == 'remappings')
    remapped = {pair.elts[0].value: pair.elts[1] for pair in remaps.elts}
    assert set(remapped) == {'image', 'image/compressed', 'camera_info', 'depth',
                             'depth/compressedDepth', 'depth/camera_info'}
    for transport, base, suffix in (('image/compressed', 'image', '/compressed'),
                                    ('depth/compressedDepth', 'depth', '/compressedDepth')):
        target = remapped[transport]
        assert target.elts[0].args[0].value == base and target.elts[1].value == suffix
