"""The ROS-native path: colcon builds the package, runs its tests and its installed node.

colcon and rclpy come from PyPI into the venv, which also holds the package installed editable
(its source tree on sys.path through a .pth file). The installed node is run the way a user runs
it, `source install/local_setup.bash` first, and checked to import the install space's copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from image_msgs import image_from_rgb, stamped
from ros_harness import NodeProcess
from jetson_seg.model_info import PACKAGED_MODELS
from jetson_seg.tools.node_client import NodeClient

REPO = Path(__file__).resolve().parent.parent
MSGS = REPO / 'interfaces' / 'jetson_seg_msgs'
COLCON = Path(sys.executable).parent / 'colcon'
#: The harness's `python -m jetson_seg.ros.segmentation_node ARGS` replaced by what a user runs
#: in a workspace ($1): the installed executable after local_setup.bash, the venv ($2) in
#: AMENT_PREFIX_PATH behind the install space (ament_index finds venv packages there).
INSTALLED_NODE = r'''
cd "$1" || exit 97
export AMENT_PREFIX_PATH="$2${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
source install/local_setup.bash || exit 98
[ "$4 $5" = "-m jetson_seg.ros.segmentation_node" ] || { echo "not the node: $*"; exit 99; }
shift 5
exec install/jetson_seg/lib/jetson_seg/segmentation_node "$@"
'''
#: Files `python -v` reports loading code from ('# code object from X', '# X.pyc matches Y').
LOADED = re.compile(r"^# (?:code object from '?([^'\s]+)'?|\S+ matches (\S+))$", re.MULTILINE)


def _colcon(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(COLCON), '--log-base', str(tmp / 'log'), *args]
    # the venv's ROS wheels stand in for a sourced installation's ament and rosidl (CMake finds
    # them through the prefix paths a setup.bash would set)
    prefix = ':'.join(filter(None, [sys.prefix, os.environ.get('CMAKE_PREFIX_PATH')]))
    env = {**os.environ, 'COLCON_HOME': str(tmp / 'colcon_home'), 'CMAKE_PREFIX_PATH': prefix,
           'AMENT_PREFIX_PATH': ':'.join(filter(None, [sys.prefix,
                                                       os.environ.get('AMENT_PREFIX_PATH')]))}
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('colcon_ws')
    # as the README says: the messages package lies inside this one, where colcon's crawl of
    # src/ does not look, so its folder is a base path of its own
    build = _colcon(tmp, 'build', '--base-paths', str(REPO), str(MSGS), '--build-base',
                    str(tmp / 'build'), '--install-base', str(tmp / 'install'),
                    '--cmake-args', f'-DPython3_EXECUTABLE={sys.executable}',
                    '-DBUILD_TESTING=OFF')
    assert build.returncode == 0, build.stdout + build.stderr
    return tmp


def test_colcon_build_installs_executables_launch_config_and_model(workspace):
    tmp_path = workspace
    prefix = tmp_path / 'install' / 'jetson_seg'
    for exe in ('segmentation_node', 'optimizer_node', 'bag_player', 'bag_recorder',
                'evaluate', 'make_sample_bag', 'demo', 'train'):
        assert (prefix / 'lib' / 'jetson_seg' / exe).is_file(), exe
    share = prefix / 'share' / 'jetson_seg'
    for rel in ('package.xml', 'launch/segmentation.launch.py', 'launch/optimize.launch.py',
                'launch/replay.launch.py', 'config/segmentation.yaml',
                'config/fastdds_large_images.xml'):
        assert (share / rel).is_file(), rel
    for name in PACKAGED_MODELS:  # each with its optimizer output, as the source tree has it
        source = REPO / 'models' / name  # but hidden files (the optimizer's .lock), as glob
        files = sorted(rel for rel in (f.relative_to(source) for f in source.rglob('*')
                                       if f.is_file())
                       if not any(part.startswith('.') for part in rel.parts))
        assert {'model.keras', 'model.json', 'optimized/manifest.json'} <= set(map(str, files))
        for rel in files:
            assert (share / 'models' / name / rel).is_file(), (name, rel)
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'jetson_seg').is_file()
    # jetson_seg_msgs is built beside it; the vision_msgs subset of interfaces/ is for the
    # venv only and never overlays a ROS installation's full vision_msgs
    assert (tmp_path / 'install' / 'jetson_seg_msgs' / 'share' / 'jetson_seg_msgs' / 'msg' /
            'TrackArray.msg').is_file()
    assert not (tmp_path / 'install' / 'vision_msgs').exists()


def test_colcon_test_runs_the_package_tests(workspace):
    tmp_path = workspace
    result = _colcon(tmp_path, 'test', '--base-paths', str(REPO), '--packages-select',
                     'jetson_seg', '--build-base',
                     str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
                     '--pytest-args', '-k', 'lint or test_parameters or launch_file')
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = _colcon(tmp_path, 'test-result', '--test-result-base', str(tmp_path / 'build'),
                      '--verbose')
    assert verdict.returncode == 0, verdict.stdout  # colcon test itself exits 0 on failures
    assert 'errors, 0 failures' in verdict.stdout and ' 0 tests' not in verdict.stdout


def _installed_copy(workspace: Path) -> Path:
    return workspace / 'install' / 'jetson_seg' / 'lib' / \
        f'python{sys.version_info.major}.{sys.version_info.minor}' / 'site-packages' / 'jetson_seg'


def test_sourcing_the_install_space_decides_which_copy_python_imports(workspace):
    """Why the node test below checks its imports: unsourced, the editable source tree wins."""
    probe = 'import jetson_seg; print(jetson_seg.__file__)'
    found = {}
    for sourced in (False, True):
        script = ('source install/local_setup.bash; ' if sourced else '') + \
            f'exec {sys.executable} -c "{probe}"'
        out = subprocess.run(['bash', '-c', script], cwd=workspace, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        found[sourced] = Path(out.stdout.strip()).parent
    assert found == {False: REPO / 'jetson_seg', True: _installed_copy(workspace)}


def test_the_installed_node_serves_the_packaged_model_from_share(workspace, ros_env):
    """colcon build (no symlinks), then the installed executable with no model_path, over DDS."""
    share = workspace / 'install' / 'jetson_seg' / 'share' / 'jetson_seg'
    node = NodeProcess({'threads': 1}, {**ros_env, 'PYTHONVERBOSE': '1'}, namespace='/installed',
                       params_file=share / 'config' / 'segmentation.yaml',
                       wrapper=('bash', '-c', INSTALLED_NODE, 'installed_node', str(workspace),
                                sys.prefix))
    client = NodeClient.on_own_node('installed_client', namespace='/installed',
                                    outputs=('mask',))
    try:
        node.wait_for_output('active: listening')
        cmdline = Path(f'/proc/{node.proc.pid}/cmdline').read_bytes().split(b'\0')
        assert Path(cmdline[1].decode()) == share.parents[1] / 'lib' / 'jetson_seg' / \
            'segmentation_node', cmdline  # the bash wrapper exec'd the installed script
        client.connect(node_proc=node)
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[200:280, 280:360] = (230, 40, 40)  # a red box on black
        answer = client.request(stamped(image_from_rgb(frame, 'rgb8'), 1))
        mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(480, 640)
        assert (mask[220:260, 300:340] != 0).mean() > 0.5  # the object, segmented
        assert (mask[:100] == 0).all()
    finally:
        client.close()
        assert node.stop() == 0, node.text[-3000:]
    text = node.text
    model = re.search(r'configured: engine=\S+ model=(\S+)', text)
    assert model and Path(model.group(1)).is_relative_to(share / 'models' / 'default'), \
        model and model.group(0)
    loaded = [Path(a or b) for a, b in LOADED.findall(text)]
    from_source = [path for path in loaded if path.is_relative_to(REPO / 'jetson_seg')]
    assert not from_source, f'the node imported the source tree: {from_source[:3]}'
    installed = [path for path in loaded if path.is_relative_to(_installed_copy(workspace))]
    assert any(path.name.startswith('segmentation_node.') for path in installed), installed[:5]
    assert 'Traceback' not in text, text[-3000:]
