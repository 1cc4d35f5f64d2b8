"""Run a Python module with the installed rclpy cut down to Humble's API.

No Humble wheels exist, so the node's Humble support is tested on Kilted's rclpy with every
public name Humble's rclpy lacks hidden from the code under test (the names Humble defines are
read from the humble branch's sources: data/rclpy_humble_api.json, made by rclpy_api.py):

    python test/humble_rclpy.py -- PYTHON -m jetson_seg.ros.segmentation_node --ros-args ...
    python test/humble_rclpy.py -- PYTHON -c 'import rclpy.experimental'   # ImportError

(the form node_client.NodeUnderTest's `wrapper` gives). Code outside rclpy then finds, as on
Humble:
- no class attribute Humble's class lacks (`Node.add_post_set_parameters_callback`, ...):
  AttributeError, and hasattr() is False;
- no module attribute Humble's module lacks, and no submodule Humble lacks
  (`rclpy.experimental`, `rclpy.event_handler`, ...): ImportError;
- no keyword argument (or extra positional one) Humble's function or method does not take:
  TypeError.
rclpy's own code keeps its whole API (the caller's module decides), so Kilted's rclpy still
works underneath. Not covered: behaviour that changed under the same name, enum members (the
enum machinery finds them anyway), C extension types, the rmw underneath.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import json
import pkgutil
import runpy
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable

API_FILE = Path(__file__).resolve().parent / 'data' / 'rclpy_humble_api.json'
HUMBLE = "not in Humble's rclpy"


def _from_rclpy(depth: int) -> bool:
    """Whether the frame `depth` levels up runs rclpy's own code."""
    name = sys._getframe(depth + 1).f_globals.get('__name__', '')
    return name == 'rclpy' or name.startswith('rclpy.')


class HumbleApi:
    """The names Humble's rclpy defines, per module and per class (bases included)."""

    def __init__(self, path: Path = API_FILE) -> None:
        data = json.loads(path.read_text())
        self.source: dict[str, Any] = data['source']
        self.modules: dict[str, Any] = data['modules']
        self.classes = {f'{mod}.{name}': cls for mod, api in self.modules.items()
                        for name, cls in api['classes'].items()}

    def module_names(self, module: str) -> set[str]:
        """Names `module` binds, and its Humble submodules when it is a package."""
        subs = {name[len(module) + 1:] for name in self.modules
                if name.startswith(module + '.') and '.' not in name[len(module) + 1:]}
        return set(self.modules[module]['names']) | subs

    def class_attributes(self, qualified: str) -> set[str]:
        """Public attributes of a Humble class, inherited ones from rclpy bases included."""
        cls = self.classes.get(qualified)
        if cls is None:
            return set()
        names = set(cls['attributes'])
        for base in cls['bases']:
            names |= self.class_attributes(base)
        return names

    def signature(self, module: str, qualname: str) -> dict[str, Any] | None:
        """Humble's parameters of a function or method (`Class.method`), where it has one."""
        api = self.modules.get(module)
        if api is None:
            return None
        if '.' not in qualname:
            return api['functions'].get(qualname)
        owner, _, method = qualname.partition('.')
        queue = [f'{module}.{owner}']
        while queue:  # the method may be defined in a Humble base class
            cls = self.classes.get(queue.pop(0))
            if cls is None:
                continue
            if method in cls['signatures']:
                return cls['signatures'][method]
            queue.extend(cls['bases'])
        return None


class _Hidden:
    """A class attribute Humble lacks: invisible to callers outside rclpy."""

    def __init__(self, owner: str, name: str, original: object) -> None:
        self.owner, self.name, self.original = owner, name, original

    def __get__(self, obj: object, objtype: type | None = None) -> object:
        if not _from_rclpy(1):
            raise AttributeError(f'{self.owner!r} object has no attribute {self.name!r} '
                                 f'({HUMBLE})')
        if hasattr(self.original, '__get__'):
            return self.original.__get__(obj, objtype)
        return self.original


class _HumbleModule(types.ModuleType):
    """An rclpy module whose attributes Humble lacks are invisible outside rclpy."""

    hidden: dict[str, set[str]] = {}

    def __getattribute__(self, name: str) -> Any:
        module = types.ModuleType.__getattribute__(self, '__name__')
        if name in _HumbleModule.hidden.get(module, ()) and not _from_rclpy(1):
            raise AttributeError(f'module {module!r} has no attribute {name!r} ({HUMBLE})')
        return types.ModuleType.__getattribute__(self, name)


def _checked(func: Callable, sig: dict[str, Any], where: str) -> Callable:
    """`func` refusing, from callers outside rclpy, arguments Humble's version does not take."""
    accepted = set(sig['positional']) | set(sig['keyword_only'])

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not _from_rclpy(1):
            if not sig['varargs'] and len(args) > len(sig['positional']):
                raise TypeError(f'{where}() takes {len(sig["positional"])} positional '
                                f'arguments but {len(args)} were given ({HUMBLE})')
            unknown = sorted(set(kwargs) - accepted) if not sig['varkw'] else []
            if unknown:
                raise TypeError(f'{where}() got an unexpected keyword argument '
                                f'{unknown[0]!r} ({HUMBLE})')
        return func(*args, **kwargs)
    return checked


def _needs_check(func: Callable, sig: dict[str, Any]) -> bool:
    """Whether the installed `func` takes arguments Humble's version does not."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = inspect.Parameter
    if not sig['varargs'] and any(p.kind == kinds.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                  kinds.POSITIONAL_OR_KEYWORD)]
    named = {p.name for p in params if p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)}
    return len(positional) > len(sig['positional']) or (
        not sig['varkw'] and bool(named - set(sig['positional']) - set(sig['keyword_only'])))


def _guard_callable(raw: object, sig: dict[str, Any] | None, where: str) -> object | None:
    """A checking replacement for a function/staticmethod/classmethod, or None if not needed."""
    if sig is None:
        return None
    wrapper = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
    func = raw.__func__ if wrapper else raw
    if not inspect.isfunction(func) or not _needs_check(func, sig):
        return None
    checked = _checked(func, sig, where)
    return wrapper(checked) if wrapper else checked


def _installed_modules() -> list[str]:
    import rclpy

    return ['rclpy'] + sorted(m.name for m in pkgutil.walk_packages(rclpy.__path__, 'rclpy.'))


def _cut_classes(api: HumbleApi, module: types.ModuleType, report: dict[str, list[str]]) -> None:
    """Hide the class attributes Humble lacks and check the arguments of the others."""
    classes = [value for name, value in vars(module).items() if inspect.isclass(value)
               and value.__module__ == module.__name__ and name in
               api.modules[module.__name__]['classes']]
    for cls in sorted(classes, key=lambda c: len(c.__mro__)):  # bases first
        allowed = api.class_attributes(f'{cls.__module__}.{cls.__qualname__}')
        own = [k for k in cls.__mro__ if k.__module__.startswith('rclpy')]
        names = {n for k in own for n in vars(k) if not n.startswith('_')} | {'__init__'}
        for name in sorted(names):
            holder = next((k for k in own if name in vars(k)), None)
            if holder is None:
                continue
            raw = vars(holder)[name]
            if isinstance(cls, type) and issubclass(cls, __import__('enum').Enum) and \
                    isinstance(raw, cls):
                continue  # enum members: EnumType.__getattr__ would find them anyway
            if isinstance(raw, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue  # __slots__ entries: instance attributes
            if name != '__init__' and name not in allowed:
                type.__setattr__(cls, name, _Hidden(cls.__qualname__, name, raw))
                report['attributes'].append(f'{cls.__module__}.{cls.__qualname__}.{name}')
                continue
            if isinstance(raw, _Hidden):  # hidden on a base, present here in Humble
                type.__setattr__(cls, name, raw.original)
                raw = raw.original
            sig = api.signature(cls.__module__, f'{cls.__qualname__}.{name}')
            guarded = _guard_callable(raw, sig, f'{cls.__qualname__}.{name}')
            if guarded is not None:
                type.__setattr__(cls, name, guarded)
                report['arguments'].append(f'{cls.__module__}.{cls.__qualname__}.{name}')


def _cut_module(api: HumbleApi, module: types.ModuleType, report: dict[str, list[str]]) -> None:
    """Hide module attributes Humble lacks; check the arguments of its functions."""
    name = module.__name__
    hidden = {n for n in vars(module) if not n.startswith('_')} - api.module_names(name)
    _HumbleModule.hidden[name] = hidden
    report['attributes'].extend(f'{name}.{n}' for n in sorted(hidden))
    for attr, value in list(vars(module).items()):
        if attr.startswith('_') or attr in hidden or not inspect.isfunction(value):
            continue
        sig = api.signature(value.__module__, value.__qualname__)
        guarded = _guard_callable(value, sig, f'{value.__module__}.{value.__qualname__}')
        if guarded is not None:
            setattr(module, attr, guarded)
            report['arguments'].append(f'{name}.{attr}')
    module.__class__ = _HumbleModule
    _cut_classes(api, module, report)


def _guard_imports(missing: set[str]) -> None:
    """Make the rclpy submodules Humble lacks unimportable from outside rclpy."""
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def refuse(name: str, importer: str) -> None:
        if importer == 'rclpy' or importer.startswith('rclpy.'):
            return
        parts = name.split('.')
        for end in range(2, len(parts) + 1):
            if '.'.join(parts[:end]) in missing:
                raise ModuleNotFoundError(f"No module named {name!r} ({HUMBLE})", name=name)

    def humble_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get('__name__', '')
        if level == 0 and name.split('.')[0] == 'rclpy':
            refuse(name, importer)
            for item in fromlist or ():
                if f'{name}.{item}' in missing:
                    refuse(f'{name}.{item}', importer)
        return real_import(name, globals, locals, fromlist, level)

    def humble_import_module(name: str, package: str | None = None):
        refuse(name, sys._getframe(1).f_globals.get('__name__', ''))
        return real_import_module(name, package)

    builtins.__import__ = humble_import
    importlib.import_module = humble_import_module


def cut_down(api: HumbleApi | None = None) -> dict[str, list[str]]:
    """Cut the installed rclpy down to `api` (Humble's); returns what was hidden or checked."""
    api = api or HumbleApi()
    report: dict[str, list[str]] = {'modules': [], 'attributes': [], 'arguments': []}
    installed = _installed_modules()
    with warnings.catch_warnings():  # e.g. Kilted's qos_event deprecation warning
        warnings.simplefilter('ignore')
        for name in installed:
            if name in api.modules:
                importlib.import_module(name)
    missing = {name for name in installed if name not in api.modules}
    report['modules'] = sorted(missing)
    for name in installed:
        if name in api.modules:
            _cut_module(api, sys.modules[name], report)
    _guard_imports(missing)
    return report


def main(argv: list[str]) -> int:
    """`-- PYTHON -m MODULE ARGS...` (or `-c CODE`): cut rclpy down, then run as python would."""
    if argv[:1] == ['--']:
        argv = argv[1:]
    if len(argv) < 3 or argv[1] not in ('-m', '-c'):
        print('usage: humble_rclpy.py -- PYTHON -m MODULE [ARGS...] | -c CODE', file=sys.stderr)
        return 2
    report = cut_down()
    print(f'humble_rclpy: rclpy cut down to Humble {HumbleApi().source["rclpy_version"]}: '
          f'{len(report["modules"])} modules, {len(report["attributes"])} attributes hidden, '
          f'{len(report["arguments"])} signatures checked', file=sys.stderr, flush=True)
    sys.argv = [argv[1] if argv[1] == '-c' else argv[2], *argv[3:]]
    if argv[1] == '-c':
        exec(compile(argv[2], '<string>', 'exec'), {'__name__': '__main__'})
    else:
        runpy.run_module(argv[2], run_name='__main__', alter_sys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
