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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def module_graph() -> dict[str, set[str]]:
    """Every jetson_seg module -> the jetson_seg modules it imports, anywhere in its code.

    Imports inside functions count: a circle they close only at run time is a circle in the
    design all the same. `from package import name` points at the submodule where one exists.
    """
    import ast

    paths = {_module_name(path): path for path in sorted(PACKAGE.rglob('*.py'))}
    graph = {}
    for module, path in paths.items():
        package = (module if path.name == '__init__.py' else module.rpartition('.')[0]).split('.')
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):  # `from ..x import y` counts up from package
                base = '.'.join(package[:len(package) + 1 - node.level]) if node.level else ''
                source = '.'.join(part for part in (base, node.module) if part)
                for alias in node.names:
                    child = f'{source}.{alias.name}'
                    found.add(child if child in paths else source)
        graph[module] = {target for target in found if target in paths and target != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Circles of `graph`, each as [a, b, ..., a]: one per edge that leads back into the path."""
    cycles, done, path = [], set(), []

    def visit(module: str) -> None:
        path.append(module)
        for target in sorted(graph[module]):
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return cycles


def test_the_cycle_search_finds_a_circle_and_reads_lazy_imports():
    assert import_cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == \
        [['a', 'b', 'c', 'a']]
    assert import_cycles({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) == []
    graph = module_graph()
    assert 'jetson_seg.vision.postprocess' in graph['jetson_seg.training.train']  # in a function
    assert 'jetson_seg.vision.letterbox' in graph['jetson_seg.vision.preprocess']


def test_no_module_imports_itself_through_others():
    """The module graph has no circles: each module can be read (and tested) after those below."""
    cycles = import_cycles(module_graph())
    assert not cycles, 'import circles:\n' + '\n'.join(' -> '.join(c) for c in cycles)
