"""The ROS-native path: colcon builds the package and runs its tests (colcon from PyPI)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COLCON = Path(sys.executable).parent / 'colcon'


def _colcon(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(COLCON), '--log-base', str(tmp / 'log'), *args]
    env = {**os.environ, 'COLCON_HOME': str(tmp / 'colcon_home')}
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('colcon_ws')
    build = _colcon(tmp, 'build', '--base-paths', str(REPO), '--build-base',
                    str(tmp / 'build'), '--install-base', str(tmp / 'install'))
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
                'config/fastdds_large_images.xml', 'models/default/model.keras',
                'models/default/model.json'):
        assert (share / rel).is_file(), rel
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'jetson_seg').is_file()


def test_colcon_test_runs_the_package_tests(workspace):
    tmp_path = workspace
    result = _colcon(tmp_path, 'test', '--base-paths', str(REPO), '--build-base',
                     str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install'),
                     '--pytest-args', '-k', 'lint or test_parameters or launch_file')
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = _colcon(tmp_path, 'test-result', '--test-result-base', str(tmp_path / 'build'),
                      '--verbose')
    assert verdict.returncode == 0, verdict.stdout  # colcon test itself exits 0 on failures
    assert 'errors, 0 failures' in verdict.stdout and ' 0 tests' not in verdict.stdout
