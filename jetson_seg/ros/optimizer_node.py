"""ROS 2 optimizer node: freeze, optimize and convert a model from ROS parameters, then exit.

    python -m jetson_seg.ros.optimizer_node --ros-args --params-file config/optimizer.yaml
    ros2 run jetson_seg optimizer_node --ros-args -p output_dir:=/tmp/seg -p targets:=[tf,litert]

Exit code 0 on success, 1 when the run failed (one line naming the step and the cause; the
traceback too with debug:=true), 2 for bad parameters, 130 / 143 when SIGINT / SIGTERM stopped
it. A signal is honoured between steps (a step running in C++, such as a TensorRT build,
finishes first): the unfinished run folder is removed and the previous artefacts stay served.
A failed or stopped run never replaces the previous artefacts.
"""

from __future__ import annotations

import signal
import sys
import traceback

import rclpy
from rclpy.signals import SignalHandlerOptions

from jetson_seg.optimize.conversion_settings import ConversionSettings
from jetson_seg.errors import JetsonSegError
from jetson_seg.optimize.optimizer import (TARGETS, Optimizer, OptimizerConfig, RunStopped,
                                           default_output_dir)
from jetson_seg.ros.node_parameters import OPTIMIZER_PARAMS
from jetson_seg.ros.parameter_declaration import PARAM_ERRORS, declare_all
from jetson_seg.ros.shutdown import ShutdownRequest

#: Longest cause shown for an error outside the package's own (TensorFlow's run to pages).
MAX_CAUSE = 400


def config_from_node(node) -> OptimizerConfig:
    """Translate the node's parameters into an OptimizerConfig."""
    p = {spec.name: node.get_parameter(spec.name).value for spec in OPTIMIZER_PARAMS}
    if not p['targets']:
        raise ValueError(f'targets is empty: give at least one of {", ".join(TARGETS)}')
    if not p['is_dynamic_op']:
        raise ValueError('is_dynamic_op:=false is TF1-only; TF 2.x TF-TRT builds dynamic ops '
                         'only (set it to true)')
    if p['precision_mode'] == 'INT8' and not (p['calibration_bag'] or p['calibration_images']):
        node.get_logger().warning('INT8 without calibration_bag/calibration_images: '
                                  'calibrating on generated scenes')
    for kind in ('calibration', 'check'):
        if bool(p[f'{kind}_bag']) != bool(p[f'{kind}_topic']):
            raise ValueError(f'{kind}_bag and {kind}_topic go together')
    conversion = ConversionSettings(
        precision_mode=p['precision_mode'],
        max_workspace_size_bytes=p['max_workspace_size_bytes'],
        minimum_segment_size=p['minimum_segment_size'],
        max_batch_size=p['max_batch_size'], is_dynamic_op=True,
        maximum_cached_engines=p['maximum_cached_engines'],
        deny_op_types=tuple(t for t in (p['deny_op_types'] or []) if t),
        use_calibration=p['precision_mode'] == 'INT8')
    return OptimizerConfig(
        input_model=p['input_model'], output_dir=p['output_dir'] or default_output_dir(),
        targets=tuple(p['targets']), conversion=conversion, build_engines=p['build_engines'],
        build_batch_sizes=tuple(p['build_batch_sizes']),
        calibration_bag=p['calibration_bag'], calibration_topic=p['calibration_topic'],
        calibration_images=p['calibration_images'],
        calibration_frames=p['calibration_frames'], check_bag=p['check_bag'],
        check_topic=p['check_topic'], check_images=p['check_images'],
        check_frames=p['check_frames'], int8_float_ops=p['int8_float_ops'],
        force_rebuild=p['force_rebuild'],
        trust_model=p['trust_model'])


def failure_line(step: str, exc: BaseException) -> str:
    """One line naming the step and the cause of a failed run.

    The package's own errors (and file or value errors) carry a message written for the user;
    anything else is a converter's or runtime's error, named by type and cut short.
    """
    cause = ' '.join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (JetsonSegError, OSError, ValueError)):
        if len(cause) > MAX_CAUSE:
            cause = cause[:MAX_CAUSE] + '...'
        cause = f'unexpected {type(exc).__name__}: {cause} (debug:=true prints the traceback)'
    return f'optimization failed at step {step!r}: {cause}'


def exit_code(signal_name: str) -> int:
    """The shell's code for a process ended by `signal_name`: 130 SIGINT, 143 SIGTERM."""
    return 128 + signal.Signals[signal_name].value


def main(args: list[str] | None = None) -> int:
    """Run one optimization from parameters and return the process exit code.

    SIGINT/SIGTERM only set a flag (ShutdownRequest, as in the segmentation node; rclpy's own
    handlers are off) that the optimizer reads between steps.
    """
    shutdown = ShutdownRequest().install()
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('optimizer_node')
    log = node.get_logger()
    try:
        try:
            declare_all(node, OPTIMIZER_PARAMS)
            config = config_from_node(node)
        except PARAM_ERRORS as exc:
            log.error(f'{exc}')
            return 2
        debug = node.get_parameter('debug').value
        log.info(f'optimizing {config.input_model or "the default model"} -> '
                 f'{config.output_dir}, targets {list(config.targets)}')
        optimizer = Optimizer(config, log=log.info, stop=lambda: shutdown.signal_name)
        try:
            manifest = optimizer.run()
        except RunStopped as exc:
            log.warning(str(exc))
            return exit_code(exc.signal_name)
        except Exception as exc:  # every failure: one line, the traceback only when asked
            log.error(failure_line(optimizer.step, exc))
            if debug:
                traceback.print_exc()
            return 1
        log.info(f'done: {config.output_dir} (run {manifest["run"]}); serve it with '
                 f'segmentation_node -p model_path:={config.output_dir}'
                 + (f' ({shutdown.signal_name} came while publishing: the run had completed)'
                    if shutdown.requested else ''))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
