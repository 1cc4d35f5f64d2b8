"""Read the public API of an rclpy branch from its sources: names only, no code is copied.

Writes test/data/rclpy_humble_api.json, which test/humble_rclpy.py uses to cut the installed
rclpy down to what Humble's rclpy defines (no Humble wheels exist to test against):

    python test/rclpy_api.py --git-dir CLONE_OF_ROS2_RCLPY/.git --ref humble \
        > test/data/rclpy_humble_api.json

Per module of `rclpy/rclpy/`: the names bound at module level (definitions, assignments,
imports, also inside try/if blocks, but not under `if TYPE_CHECKING:`), and per class its
public attributes (methods, properties, class and instance attributes), its bases inside rclpy
and the parameter names of its functions and methods (keyword arguments are API too).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from typing import Any, Iterable

PACKAGE_DIR = 'rclpy/rclpy/'


def module_name(path: str) -> str:
    """'rclpy/rclpy/lifecycle/__init__.py' -> 'rclpy.lifecycle'."""
    dotted = path[len('rclpy/'):-len('.py')].replace('/', '.')
    return dotted[:-len('.__init__')] if dotted.endswith('.__init__') else dotted


def signature(func: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, Any]:
    """The parameter names of a def: positional (self included), keyword-only, *args, **kw."""
    args = func.args
    return {'positional': [a.arg for a in args.posonlyargs + args.args],
            'keyword_only': [a.arg for a in args.kwonlyargs],
            'varargs': args.vararg is not None, 'varkw': args.kwarg is not None}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or \
        (isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements run at import time: try/if blocks opened, TYPE_CHECKING blocks left out."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                yield from _statements(stmt.body)
            yield from _statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse,
                          stmt.finalbody):
                yield from _statements(block)
        else:
            yield stmt


def _bound(stmt: ast.stmt) -> list[str]:
    """Names a module- or class-level statement binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split('.')[0] for alias in stmt.names]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else \
        [stmt.target] if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else []
    return [node.id for target in targets for node in ast.walk(target)
            if isinstance(node, ast.Name)]


def _imports(tree: ast.Module, module: str) -> dict[str, str]:
    """Local name -> dotted origin, for `from rclpy... import X` at module level."""
    origin = {}
    for stmt in _statements(tree.body):
        if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
            for alias in stmt.names:
                origin[alias.asname or alias.name] = f'{stmt.module}.{alias.name}'
    return origin


def _base_name(base: ast.expr, module: str, classes: set[str],
               origin: dict[str, str]) -> str | None:
    """A base class as 'rclpy.mod.Class' when it is rclpy's own, else None."""
    if isinstance(base, ast.Subscript):  # Generic[T], Node[...]
        base = base.value
    if isinstance(base, ast.Name):
        if base.id in classes:
            return f'{module}.{base.id}'
        found = origin.get(base.id, '')
        return found if found.startswith('rclpy.') else None
    return None


def read_module(source: str, module: str) -> dict[str, Any]:
    """Module-level names, classes (public attributes, bases, signatures) and functions."""
    tree = ast.parse(source)
    body = list(_statements(tree.body))
    names = sorted({name for stmt in body for name in _bound(stmt)})
    class_defs = [stmt for stmt in body if isinstance(stmt, ast.ClassDef)]
    origin = _imports(tree, module)
    classes = {}
    for cls in class_defs:
        members = list(_statements(cls.body))
        methods = {stmt.name: signature(stmt) for stmt in members
                   if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))}
        public = {name for stmt in members for name in _bound(stmt) if not name.startswith('_')}
        public |= {node.attr for stmt in members for node in ast.walk(stmt)  # self.x = ...
                   if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                   and isinstance(node.value, ast.Name) and node.value.id == 'self'
                   and not node.attr.startswith('_')}
        classes[cls.name] = {
            'bases': [b for b in (_base_name(base, module, {c.name for c in class_defs}, origin)
                                  for base in cls.bases) if b],
            'attributes': sorted(public),
            'signatures': {name: sig for name, sig in sorted(methods.items())
                           if not name.startswith('_') or name == '__init__'}}
    functions = {stmt.name: signature(stmt) for stmt in body
                 if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and not stmt.name.startswith('_')}
    return {'names': names, 'classes': classes, 'functions': functions}


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(['git', '--git-dir', git_dir, *args], check=True,
                          capture_output=True, text=True).stdout


def read_branch(git_dir: str, ref: str) -> dict[str, Any]:
    """The API of every module under rclpy/rclpy/ at `ref`, with where it was read."""
    commit = _git(git_dir, 'rev-parse', f'{ref}^{{commit}}').strip()
    paths = sorted(p for p in _git(git_dir, 'ls-tree', '-r', '--name-only', commit,
                                   PACKAGE_DIR).split() if p.endswith('.py'))
    package_xml = _git(git_dir, 'show', f'{commit}:rclpy/package.xml')
    version = package_xml.split('<version>', 1)[1].split('</version>', 1)[0]
    modules = {module_name(p): read_module(_git(git_dir, 'show', f'{commit}:{p}'), module_name(p))
               for p in paths}
    return {'source': {'repository': 'https://github.com/ros2/rclpy', 'branch': ref,
                       'commit': commit, 'rclpy_version': version,
                       'files': [PACKAGE_DIR + '**/*.py (each module below)',
                                 'rclpy/package.xml (version)'],
                       'made_by': 'python test/rclpy_api.py --git-dir DIR --ref ' + ref},
            'modules': modules}


def main(argv: list[str] | None = None) -> int:
    """Print the API of one branch as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--git-dir', required=True, help='a clone of ros2/rclpy (its .git)')
    parser.add_argument('--ref', default='humble', help='branch, tag or commit')
    args = parser.parse_args(argv)
    json.dump(read_branch(args.git_dir, args.ref), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == '__main__':
    sys.exit(main())
