"""Where Jetson teams are: the serving groups resolve for Python 3.10-3.12 on aarch64 and x86_64.

This venv is Python 3.11 on x86_64; JetPack 6 is 3.10 on aarch64 and JetPack 7 is 3.12. pip's own
resolver answers for those targets from the package index (as pip would on the robot), and vermin
reads the package's code for syntax and library calls newer than 3.10.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
GROUPS = REPO / 'requirements'
#: What a robot installs to serve (no TensorFlow): README "Dependency groups".
SERVING = ('serve', 'litert', 'onnx', 'onnxruntime-cpu', 'tools')
#: glibc of the targets' wheels: the oldest manylinux tags up to Ubuntu 22.04's 2.35.
GLIBC = ('2_5', '2_12', '2_17', '2_27', '2_28', '2_31', '2_35')


def _for_target(groups: tuple[str, ...], python: str, machine: str) -> list[str]:
    """The groups' requirements whose markers hold on the target, as pip there would pick them.

    pip's --python-version does not reach environment markers (they follow the running
    interpreter), so they are evaluated here for the target.
    """
    environment = {'python_version': python, 'python_full_version': f'{python}.0',
                   'platform_machine': machine, 'sys_platform': 'linux'}
    picked = []
    for group in groups:
        for line in (GROUPS / f'{group}.txt').read_text().splitlines():
            spec = line.split('#')[0].strip()
            if spec:
                requirement = Requirement(spec)
                if requirement.marker is None or requirement.marker.evaluate(environment):
                    requirement.marker = None
                    picked.append(str(requirement))
    return picked


def _resolve(groups: tuple[str, ...], python: str, machine: str, target: Path) -> dict:
    """pip's resolution of `groups` for `python` on `machine` (nothing installed): name -> ver."""
    report = target / 'report.json'
    cmd = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--quiet', '--ignore-installed',
           '--only-binary=:all:', '--python-version', python, '--target', str(target / 'site'),
           '--report', str(report), *_for_target(groups, python, machine)]
    for glibc in GLIBC:
        cmd += ['--platform', f'manylinux_{glibc}_{machine}']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {item['metadata']['name'].lower(): item['metadata']['version']
            for item in json.loads(report.read_text())['install']}


@pytest.mark.parametrize('python', ['3.10', '3.12'])
@pytest.mark.parametrize('machine', ['aarch64', 'x86_64'])
def test_serving_groups_resolve_for_jetpack_pythons(python, machine, tmp_path):
    resolved = _resolve(SERVING, python, machine, tmp_path)
    assert resolved['numpy'] == '1.26.4'
    assert {'ai-edge-litert', 'onnx', 'onnxruntime', 'opencv-python-headless',
            'rosbags'} <= set(resolved)
    assert resolved['onnxruntime'] == ('1.23.2' if python == '3.10' else '1.32.0')
    assert 'tensorflow' not in resolved and 'keras' not in resolved  # serving needs neither


def test_package_code_runs_on_python_3_10():
    """vermin: no syntax or standard-library use newer than 3.10 in the package."""
    vermin = Path(sys.executable).parent / 'vermin'
    result = subprocess.run([str(vermin), '--target=3.10-', '--violations',
                             '--eval-annotations', '--no-tips', str(REPO / 'jetson_seg')],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    minimum = re.search(r'Minimum required versions: (\d+)\.(\d+)', result.stdout)
    assert minimum and (int(minimum[1]), int(minimum[2])) <= (3, 10), result.stdout


def test_every_requirement_is_pinned_and_every_group_is_an_extra():
    loose = []
    for group in GROUPS.glob('*.txt'):
        for line in group.read_text().splitlines():
            spec = line.split('#')[0].strip()
            if spec and '==' not in spec and spec != 'setuptools<80':  # colcon needs < 80
                loose.append(f'{group.name}: {spec}')
    assert not loose
    tree = ast.parse((REPO / 'setup.py').read_text())
    extras = next(ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign) and node.targets[0].id == 'GROUPS')
    listed = {path.stem for path in GROUPS.glob('*.txt')} - {'ros-kilted'}
    assert set(extras) == listed
    includes = {line.split('/')[-1].removesuffix('.txt')
                for line in (REPO / 'requirements.txt').read_text().splitlines()
                if line.startswith('-r ')}
    assert includes == listed | {'ros-kilted'}  # the development venv has every group
