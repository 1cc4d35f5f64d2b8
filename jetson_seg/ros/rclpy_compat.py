"""Every difference between the rclpy versions the package runs on: Humble, Jazzy, Kilted.

The rest of the package calls these helpers instead of the rclpy API that differs, so one code
base runs on all three. Features are detected, not versions: a ROS installation's rclpy has no
pip metadata, and a feature is what the code needs.

- post-set parameter callbacks: rclpy's since Iron (Jazzy, Kilted); emulated here on Humble.
- EventsExecutor: rclpy.experimental since Jazzy 7.1.4 and in Kilted; Humble (and Jazzy
  before 7.1.4) serve the same callbacks with the Python SingleThreadedExecutor.
- local discovery: Humble reads ROS_LOCALHOST_ONLY; Iron and later read
  ROS_AUTOMATIC_DISCOVERY_RANGE (Jazzy still honours ROS_LOCALHOST_ONLY, with two warnings per
  process, and then ignores the range; Kilted ignores ROS_LOCALHOST_ONLY).
- Fast DDS profile file: Fast DDS 2 (Humble 2.6, Jazzy 2.14) reads FASTRTPS_DEFAULT_PROFILES_FILE
  only; Fast DDS 3 (Kilted) reads FASTDDS_DEFAULT_PROFILES_FILE and warns about the old name.
- private API used: a LifecycleNode's `_state_machine` (destroy_state_machine), alike in all.

`python -m jetson_seg.ros.rclpy_compat` prints what this ROS has; `--shell [PROFILE]` prints the
shell lines that limit discovery to this machine and load PROFILE (scripts/run_tests.sh).
"""

from __future__ import annotations

import os
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Mapping, MutableMapping, Sequence

from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.node import Node

#: Node.add_post_set_parameters_callback and ROS_AUTOMATIC_DISCOVERY_RANGE both came with Iron.
IRON_OR_NEWER = hasattr(Node, 'add_post_set_parameters_callback')

PostSetCallback = Callable[[list], None]


def events_executor_class() -> Callable[[], Executor] | None:
    """rclpy's EventsExecutor (Jazzy 7.1.4 and later, Kilted), or None (Humble, older Jazzy)."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


def executor(kind: str) -> Executor:
    """The callback executor the node's `executor` parameter asks for, where rclpy has it.

    The events executor dispatches in C++: the Python executor rebuilds its wait set every
    spin, and that time holds the interpreter lock the inference and publishing threads need
    between their C calls. Without it (Humble) the Python executor serves the same callbacks.
    """
    events = events_executor_class() if kind == 'events' else None
    return events() if events is not None else SingleThreadedExecutor()


def add_post_set_parameters_callback(node: Node, callback: PostSetCallback) -> None:
    """Call `callback(parameters)` once parameters were set (rclpy's way, or emulated)."""
    if IRON_OR_NEWER:
        node.add_post_set_parameters_callback(callback)
    else:
        emulate_post_set_parameters_callback(node, callback)


def emulate_post_set_parameters_callback(node: Node, callback: PostSetCallback) -> None:
    """Humble's stand-in for Node.add_post_set_parameters_callback (Iron and later).

    Humble has only on-set callbacks, which run before the values are stored (get_parameter
    still returns the old one) and before the other callbacks decided. Here the node's own
    set_parameters and set_parameters_atomically (what its parameter services call, on Humble
    as on Kilted) call `callback` with the parameters that were set, once they are stored,
    newest callback first as rclpy does. Unlike rclpy's, it does not run for parameters
    declared after it was added.
    """
    callbacks: list[PostSetCallback] | None = node.__dict__.get('_post_set_callbacks')
    if callbacks is None:
        callbacks = node.__dict__['_post_set_callbacks'] = []
        set_each, set_atomically = node.set_parameters, node.set_parameters_atomically

        def set_parameters(parameter_list: list) -> list:
            results = set_each(parameter_list)
            for parameter, result in zip(parameter_list, results):
                if result.successful:
                    for call in list(callbacks):
                        call([parameter])
            return results

        def set_parameters_atomically(parameter_list: list):
            result = set_atomically(parameter_list)
            if result.successful:
                for call in list(callbacks):
                    call(list(parameter_list))
            return result

        node.set_parameters = set_parameters
        node.set_parameters_atomically = set_parameters_atomically
    callbacks.insert(0, callback)


def destroy_state_machine(node: Node) -> None:
    """Free a LifecycleNode's rcl state machine now instead of at garbage collection.

    Private rclpy API (LifecycleNodeMixin._state_machine, a Destroyable), the same in Humble,
    Jazzy and Kilted; until it is freed the rcl node and its Fast DDS shared memory stay alive.
    """
    node._state_machine.destroy_when_not_in_use()


def local_discovery_env() -> dict[str, str | None]:
    """Variables that keep DDS discovery on this machine (None: remove the variable).

    ROS_AUTOMATIC_DISCOVERY_RANGE for Iron and later, ROS_LOCALHOST_ONLY for Humble. Iron and
    Jazzy still honour ROS_LOCALHOST_ONLY, warn about it in every process and then ignore the
    range; Kilted ignores it: so it is set only where it is the variable that is read.
    """
    return {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
            'ROS_LOCALHOST_ONLY': None if IRON_OR_NEWER else '1'}


def fastdds_major() -> int:
    """Fast DDS's major version: 3 where the `fastdds` package is installed, 2 for `fastrtps`.

    Read from the ament index of a sourced ROS installation, else from the pip wheels' names
    (ros-fastdds, ros-fastrtps); 3 when neither tells.
    """
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        index = Path(prefix, 'share', 'ament_index', 'resource_index', 'packages')
        for package, major in (('fastdds', 3), ('fastrtps', 2)):
            if (index / package).is_file():
                return major
    for dist, major in (('ros-fastdds', 3), ('ros-fastrtps', 2)):
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return major
    return 3


def fastdds_profile_env(profile: str) -> dict[str, str | None]:
    """Variables that make Fast DDS load the XML profile `profile` (None: remove the variable)."""
    new, old = 'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'
    if fastdds_major() >= 3:
        return {new: profile, old: None}
    return {old: profile, new: None}


def apply_env(env: MutableMapping[str, str], changes: Mapping[str, str | None]) -> None:
    """Set `changes` in `env` (os.environ or a child's); a None value removes the variable."""
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


def limit_discovery_to_localhost(env: MutableMapping[str, str]) -> None:
    """Apply local_discovery_env() to `env` (os.environ or a child's environment)."""
    apply_env(env, local_discovery_env())


def describe() -> dict[str, str]:
    """What this rclpy has, in words (for the command line and the README)."""
    events = events_executor_class() is not None
    return {'post-set parameter callbacks': 'rclpy' if IRON_OR_NEWER else 'emulated (Humble)',
            'EventsExecutor': 'yes' if events else 'no (SingleThreadedExecutor)',
            'local discovery': ', '.join(f'{k}={v}' for k, v in local_discovery_env().items()
                                         if v is not None),
            'Fast DDS': f'{fastdds_major()}.x, profile from '
                        f'{next(k for k, v in fastdds_profile_env("-").items() if v)}'}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the features, or with --shell [PROFILE] the environment as shell commands."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ['--shell'] and len(args) <= 2:
        changes = {**local_discovery_env(), **(fastdds_profile_env(args[1]) if args[1:] else {})}
        for key, value in changes.items():
            print(f'export {key}={shlex.quote(value)}' if value is not None else f'unset {key}')
        return 0
    for key, value in describe().items():
        print(f'{key}: {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
