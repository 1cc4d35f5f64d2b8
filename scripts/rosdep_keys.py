"""Record what rosdistro says about each key in package.xml (writes test/data/rosdep_keys.json).

rosdep resolves a key either as a ROS package released in the distribution or through a rule in
rosdep/*.yaml. This reads both from a rosdistro git directory (no network) for the platforms the
package targets, so test/test_package_xml.py can check package.xml offline against the facts:

    python scripts/rosdep_keys.py /path/to/rosdistro/.git   # then commit the JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / 'test' / 'data' / 'rosdep_keys.json'
#: The ROS distributions supported and the Ubuntu release each is built for (REP 2000).
DISTROS = {'humble': 'jammy', 'jazzy': 'noble', 'kilted': 'noble'}
#: rosdep's default sources (rosdep/sources.list.d/20-default.list) that hold Ubuntu rules.
RULE_FILES = ('rosdep/base.yaml', 'rosdep/python.yaml')
DEPEND_TAGS = ('depend', 'build_depend', 'build_export_depend', 'buildtool_depend',
               'buildtool_export_depend', 'exec_depend', 'test_depend', 'doc_depend')
INSTALLERS = ('apt', 'pip', 'source')


def package_keys(package_xml: Path) -> dict[str, list[str]]:
    """Each dependency key in package.xml with the tags naming it."""
    keys: dict[str, list[str]] = {}
    for element in ET.parse(package_xml).getroot():
        if element.tag in DEPEND_TAGS:
            keys.setdefault(element.text.strip(), []).append(element.tag)
    return keys


def git_show(git_dir: Path, path: str) -> str:
    return subprocess.run(['git', '--git-dir', str(git_dir), 'show', f'HEAD:{path}'],
                          check=True, capture_output=True, text=True).stdout


def resolve_ubuntu(rule: object, codename: str) -> dict[str, object] | None:
    """The installer and packages a rule gives on Ubuntu `codename` (None: rosdep finds none)."""
    if not isinstance(rule, dict) or 'ubuntu' not in rule:
        return None
    entry = rule['ubuntu']
    if isinstance(entry, dict) and not set(entry) & set(INSTALLERS):  # keyed by codename
        entry = entry.get(codename, entry.get('*'))
    if entry is None:
        return None
    if isinstance(entry, list):
        return {'installer': 'apt', 'packages': entry}
    if isinstance(entry, dict) and 'packages' in entry:  # {packages: [...]}: the default (apt)
        return {'installer': 'apt', 'packages': entry['packages']}
    installer = next(name for name in INSTALLERS if name in entry)
    spec = entry[installer]
    return {'installer': installer,
            'packages': spec.get('packages', spec) if isinstance(spec, dict) else spec}


def released_packages(distribution: dict) -> dict[str, str]:
    """ROS package name -> released version in one distribution.yaml."""
    found = {}
    for name, repo in distribution['repositories'].items():
        release = repo.get('release') or {}
        if release.get('version'):
            for package in release.get('packages', [name]):
                found[package] = release['version']
    return found


def facts(git_dir: Path, keys: dict[str, list[str]]) -> dict[str, object]:
    """What rosdistro says about each key: released ROS package and/or Ubuntu rules."""
    rules = {path: yaml.safe_load(git_show(git_dir, path)) for path in RULE_FILES}
    distributions = {d: yaml.safe_load(git_show(git_dir, f'{d}/distribution.yaml'))
                     for d in DISTROS}
    released = {d: released_packages(dist) for d, dist in distributions.items()}
    out = {}
    for key, tags in sorted(keys.items()):
        entry: dict[str, object] = {'tags': tags}
        ros = {d: released[d][key] for d in DISTROS if key in released[d]}
        if ros:
            entry['ros_package_released'] = ros
        for path, data in rules.items():
            if key in data:
                entry['rule_file'] = path
                entry['ubuntu'] = {c: resolve_ubuntu(data[key], c)
                                   for c in sorted(set(DISTROS.values()))}
        out[key] = entry
    commit = subprocess.run(['git', '--git-dir', str(git_dir), 'rev-parse', 'HEAD'], check=True,
                            capture_output=True, text=True).stdout.strip()
    return {'source': {'repository': 'https://github.com/ros/rosdistro', 'commit': commit,
                       'files': [*RULE_FILES, *(f'{d}/distribution.yaml' for d in DISTROS)]},
            'platforms': {d: distributions[d]['release_platforms']['ubuntu'] for d in DISTROS},
            'keys': out}


def why_removed(entry: dict[str, object]) -> str:
    """Why a key cannot stay in package.xml, from its facts."""
    if 'rule_file' not in entry and 'ros_package_released' not in entry:
        return 'unknown to rosdep'
    return ('a pip rule: rosdep runs an unpinned system-wide pip install, refused on noble '
            '(PEP 668) unless pip is configured to break system packages; pinned in the '
            'requirements files instead')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('rosdistro_git_dir', type=Path)
    parser.add_argument('--removed', nargs='*',
                        help='keys taken out of package.xml, recorded to show why '
                             '(default: those the current file records)')
    args = parser.parse_args(argv)
    if args.removed is None:
        args.removed = list(json.loads(OUTPUT.read_text())['removed_keys']) \
            if OUTPUT.is_file() else []
    keys = package_keys(REPO / 'package.xml')
    data = facts(args.rosdistro_git_dir, {**keys, **{key: [] for key in args.removed}})
    data['removed_keys'] = {key: data['keys'].pop(key) for key in args.removed}
    for entry in data['removed_keys'].values():
        del entry['tags']
        entry['why_removed'] = why_removed(entry)
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(data, indent=1) + '\n')
    print(f'{OUTPUT.relative_to(REPO)}: {len(keys)} keys, {len(args.removed)} removed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
