"""The lint checks ROS packages carry (ament_flake8, ament_pep257, ament_xmllint), run directly."""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ['jetson_seg', 'test', 'launch', 'scripts', 'setup.py']


def test_flake8():
    result = subprocess.run([sys.executable, '-m', 'flake8', '--max-line-length', '99',
                             *SOURCES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pep257():
    result = subprocess.run([sys.executable, '-m', 'pydocstyle', '--convention=pep257',
                             '--add-ignore=D100,D101,D102,D103,D104,D105,D107,D401,D403',
                             *SOURCES],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_xml_is_format_3_with_dependencies():
    root = ET.parse(REPO / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'jetson_seg'
    deps = {e.text for e in root if e.tag.endswith('depend')}
    for needed in ('rclpy', 'sensor_msgs', 'vision_msgs', 'diagnostic_msgs', 'std_msgs',
                   'launch_ros', 'python3-pytest'):
        assert needed in deps, needed
    assert root.find('export/build_type').text == 'ament_python'


def test_xml_files_are_well_formed():
    for path in [*REPO.glob('config/*.xml'), *REPO.glob('interfaces/*/package.xml')]:
        ET.parse(path)


def test_every_test_is_marked_unit_dds_or_slow_and_unit_runs_no_node():
    """`-m unit` is the fast subset: it holds tests, none of them a DDS test, and none unmarked."""
    def collected(marker: str) -> set[str]:
        out = subprocess.run([sys.executable, '-m', 'pytest', '--collect-only', '-q', '-m',
                              marker, '-p', 'no:cacheprovider'], cwd=REPO, capture_output=True,
                             text=True, timeout=300).stdout
        return {line for line in out.splitlines() if '::' in line}

    every = collected('unit or dds or slow')
    unit, dds = collected('unit'), collected('dds')
    assert unit and dds and not unit & dds
    assert every == collected('not nonexistent_marker')  # nothing unmarked
