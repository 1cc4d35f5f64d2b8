"""The core runs without ROS: only modules under jetson_seg/ros and jetson_seg/tools may import it.

The rule follows from the folders, so a new core module is checked without being listed: every
module outside those two folders is imported in a fresh interpreter, and the first one that
brings in a ROS module (directly or through what it imports) is named.
"""

import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / 'jetson_seg'
ROS_FOLDERS = ('ros', 'tools')
ROS = ('rclpy', 'sensor_msgs', 'std_msgs', 'vision_msgs', 'diagnostic_msgs', 'rosidl_runtime_py',
       'launch', 'launch_ros')

PROBE = """
import importlib, json, sys
ros = set(sys.argv[1].split(','))
found = {}
for name in sys.argv[2].split(','):
    importlib.import_module(name)
    found[name] = sorted({m.split('.')[0] for m in sys.modules} & ros)
print(json.dumps(found))
"""


def core_modules() -> list[str]:
    modules = []
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
        if len(parts) > 2 and parts[1] in ROS_FOLDERS:
            continue
        modules.append('.'.join(parts[:-1] if parts[-1] == '__init__' else parts))
    return modules


def test_every_core_folder_is_probed():
    folders = {m.split('.')[1] for m in core_modules() if m.count('.') >= 2}
    assert {'vision', 'engines', 'optimize', 'training'} <= folders, folders
    assert not folders & set(ROS_FOLDERS), folders


def test_core_modules_import_no_ros_module():
    modules = core_modules()
    out = subprocess.run([sys.executable, '-c', PROBE, ','.join(ROS), ','.join(modules)],
                         capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(found) == set(modules)
    # imports accumulate in one interpreter, so the first module that pulls one in is named
    offenders = {name: mods for name, mods in found.items() if mods}
    assert not offenders, f'first module to import ROS: {next(iter(offenders), None)}'


#: Rooms, lowest first: a module may import its own room and the rooms below, never above.
LAYERS = {'errors': 0, 'allocator': 0, 'model_formats': 0, 'model_info': 0, 'model_trust': 0,
          'vision': 1, 'engines': 1, 'training': 2, 'optimize': 3, 'model_loader': 4, 'ros': 5,
          'tools': 6}


def _room(module: str) -> str:
    return module.split('.')[1]


def _imports(path: Path) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith('jetson_seg.'):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith('jetson_seg.'))
    return found


def test_imports_point_down_the_layers():
    """Imports point down the rooms of LAYERS, never up.

    errors, model_formats, model_info, model_trust <- vision, engines <- training <- optimize
    <- model_loader <- ros, tools.

    Rooms are ordered, so an import circle between rooms cannot arise either.
    """
    upward = []
    for path in sorted(PACKAGE.rglob('*.py')):
        module = '.'.join(path.relative_to(PACKAGE.parent).with_suffix('').parts)
        if module.count('.') == 0 or module.endswith('__init__'):
            continue
        mine = LAYERS[_room(module)]
        upward += [f'{module} -> {target}' for target in _imports(path)
                   if LAYERS[_room(target)] > mine]
    assert not upward, upward
