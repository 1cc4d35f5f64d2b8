"""package.xml names only what rosdep resolves on Humble (jammy), Jazzy and Kilted (noble).

`rosdep install --from-paths src -i -y` stops at the first key it cannot resolve, so every key is
checked against facts read from rosdistro (test/data/rosdep_keys.json, written by
scripts/rosdep_keys.py with the rosdistro commit named). The code is checked the other way: each
ROS interface package it imports, and each third-party module it imports at module level, has a
key here or a pip requirement in the requirements files.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FACTS = json.loads((REPO / 'test' / 'data' / 'rosdep_keys.json').read_text())
#: This repository's own interface packages: built in the user's workspace beside jetson_seg
#: (rosdep skips packages found in the workspace), so no rosdistro facts are needed for them.
OWN_INTERFACES = {ET.parse(path).getroot().findtext('name')
                  for path in (REPO / 'interfaces').glob('*/package.xml')} - set(FACTS['keys'])
DISTROS = {'humble': 'jammy', 'jazzy': 'noble', 'kilted': 'noble'}
#: Module imported -> the rosdep key that provides it (where the names differ).
MODULE_KEYS = {'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'tqdm': 'python3-tqdm',
               'matplotlib': 'python3-matplotlib', 'yaml': 'python3-yaml'}
#: Module imported -> pip distributions that provide it (where the names differ).
MODULE_DISTS = {'cv2': ('opencv-python-headless', 'opencv-python'), 'yaml': ('pyyaml',),
                'ai_edge_litert': ('ai-edge-litert',),
                'onnxruntime': ('onnxruntime', 'onnxruntime-gpu')}
INTERFACE_IMPORT = re.compile(r'^\s*(?:from|import)\s+([a-z_][a-z0-9_]*)\.(?:msg|srv|action)\b',
                              re.MULTILINE)


def dependencies(tags: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Each key of package.xml -> the tags naming it (only `tags`, when given)."""
    keys: dict[str, list[str]] = {}
    for element in ET.parse(REPO / 'package.xml').getroot():
        if element.tag.endswith('depend') and (not tags or element.tag in tags):
            keys.setdefault(element.text.strip(), []).append(element.tag)
    return keys


def requirements() -> set[str]:
    """Normalised names of every distribution the requirements files install."""
    names = set()
    for path in [*REPO.glob('requirements*.txt'), *REPO.glob('requirements/*.txt')]:
        for line in path.read_text().splitlines():
            match = re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', line.strip())
            if match:
                names.add(normalise(match.group()))
    return names


def normalise(dist: str) -> str:
    return re.sub(r'[-_.]+', '-', dist).lower()


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((REPO / folder).rglob('*.py'))]


def module_level_imports(path: Path) -> set[str]:
    """Top-level names imported when the module loads (function bodies left out)."""
    names = set()
    for statement in ast.parse(path.read_text()).body:
        for node in ast.walk(statement) if isinstance(statement, (ast.If, ast.Try)) else [
                statement]:
            if isinstance(node, ast.Import):
                names.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split('.')[0])
    return names - set(sys.stdlib_module_names) - {'jetson_seg', '__future__'}


def test_package_xml_is_format_3():
    root = ET.parse(REPO / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'jetson_seg'
    assert root.find('export/build_type').text == 'ament_python'


def test_the_facts_name_their_source_and_platforms():
    source = FACTS['source']
    assert source['repository'] == 'https://github.com/ros/rosdistro'
    assert re.fullmatch(r'[0-9a-f]{40}', source['commit'])
    assert {'rosdep/base.yaml', 'rosdep/python.yaml'} <= set(source['files'])
    assert {distro: platforms for distro, platforms in FACTS['platforms'].items()} == {
        distro: [codename] for distro, codename in DISTROS.items()}


def test_the_facts_cover_exactly_the_keys_of_package_xml():
    """Stale facts would vouch for keys nobody checked: re-run scripts/rosdep_keys.py."""
    declared = {key: sorted(tags) for key, tags in dependencies().items()
                if key not in OWN_INTERFACES}
    recorded = {key: sorted(entry['tags']) for key, entry in FACTS['keys'].items()}
    differ = sorted(key for key in declared.keys() | recorded.keys()
                    if declared.get(key) != recorded.get(key))
    assert not differ, f'package.xml and rosdep_keys.json differ on {differ}'


def test_own_interface_packages_are_declared_and_built_by_the_set_up():
    assert OWN_INTERFACES == {'jetson_seg_msgs'}
    assert 'jetson_seg_msgs' in dependencies(('depend', 'exec_depend'))
    assert 'build_interface jetson_seg_msgs' in (REPO / 'scripts' / 'env_lib.sh').read_text()


@pytest.mark.parametrize('key', sorted(set(dependencies()) - OWN_INTERFACES))
def test_every_key_resolves_on_jammy_and_noble(key):
    """A released ROS package in all three distributions, or an apt rule on both codenames."""
    entry = FACTS['keys'].get(key)
    assert entry is not None, f'{key}: no rosdistro facts; run scripts/rosdep_keys.py'
    released = entry.get('ros_package_released', {})
    if released:
        assert sorted(released) == sorted(DISTROS), f'{key}: released only in {released}'
        return
    for codename in sorted(set(DISTROS.values())):
        rule = entry.get('ubuntu', {}).get(codename)
        assert rule is not None, f'{key}: no rosdep rule for ubuntu {codename}'
        assert rule['installer'] == 'apt' and rule['packages'], (
            f'{key}: {rule} on {codename}; pip-only dependencies belong in the requirements files')


def test_removed_pip_keys_are_in_the_requirements_files():
    """What package.xml no longer names must still be installable, pinned, with pip."""
    wanted = {normalise(key.removeprefix('python3-').removesuffix('-pip'))
              for key in FACTS['removed_keys'] if key.endswith('-pip')}
    back = set(FACTS['removed_keys']) & set(dependencies())
    assert wanted and not back, f'removed for a reason (rosdep_keys.json), named again: {back}'
    alternatives = {normalise(d): {normalise(a) for a in alts}
                    for d, alts in MODULE_DISTS.items()}
    missing = {dist for dist in wanted if not (alternatives.get(dist, {dist}) | {dist}) &
               requirements()}
    assert not missing, f'pip-only, in no requirements file: {sorted(missing)}'


def test_every_ros_interface_package_the_code_imports_is_declared():
    """rosgraph_msgs (bag_player's clock) was missing once: installed ROS had it by chance."""
    run_keys = set(dependencies(('depend', 'exec_depend')))
    test_keys = run_keys | set(dependencies(('test_depend',)))
    for folders, keys in ((('jetson_seg', 'launch'), run_keys), (('test',), test_keys)):
        for path in python_files(*folders):
            missing = set(INTERFACE_IMPORT.findall(path.read_text())) - keys
            assert not missing, f'{path.relative_to(REPO)} imports {missing}: not in package.xml'


def test_every_module_level_import_has_a_key_or_a_requirement():
    keys, pip = set(dependencies(('depend', 'exec_depend'))), requirements()
    unprovided = {}
    for path in python_files('jetson_seg', 'launch'):
        for module in module_level_imports(path):
            if MODULE_KEYS.get(module, module) in keys:
                continue
            if {normalise(d) for d in MODULE_DISTS.get(module, (module,))} & pip:
                continue
            unprovided.setdefault(module, str(path.relative_to(REPO)))
    assert not unprovided, f'no package.xml key or requirement: {unprovided}'


def _resolver():
    spec = importlib.util.spec_from_file_location('rosdep_keys', REPO / 'scripts' /
                                                  'rosdep_keys.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.resolve_ubuntu


@pytest.mark.parametrize('rule, codename, expected', [
    ({'ubuntu': ['python3-numpy']}, 'jammy', ('apt', ['python3-numpy'])),
    ({'ubuntu': {'*': ['python3-flatbuffers'], 'focal': {'pip': {'packages': ['flatbuffers']}}}},
     'noble', ('apt', ['python3-flatbuffers'])),
    ({'ubuntu': {'*': ['python3-flatbuffers'], 'focal': {'pip': {'packages': ['flatbuffers']}}}},
     'focal', ('pip', ['flatbuffers'])),
    ({'ubuntu': {'pip': {'packages': ['rosbags']}}}, 'noble', ('pip', ['rosbags'])),
    ({'ubuntu': {'jammy': ['python3-x'], 'noble': None}}, 'noble', None),
    ({'ubuntu': {'focal': ['python3-x']}}, 'jammy', None),
    ({'debian': ['python3-x']}, 'jammy', None),
])
def test_rule_reading_follows_rosdep(rule, codename, expected):
    """The shapes rosdistro's rules take: a list, per codename with '*', an installer, null."""
    got = _resolver()(rule, codename)
    assert (got and (got['installer'], got['packages'])) == expected
