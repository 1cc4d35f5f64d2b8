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
