"""TF-TRT: full conversion where TensorRT and a GPU exist, and a faithful preview where not.

The preview runs TF-TRT's own segmenter (grappler's TensorRTOptimizer) with the same parameters
as the converter, so it shows which subgraphs would become TensorRT engines, how large they are,
and which ops stay in TensorFlow. Each TRTEngineOp keeps its original subgraph as a function;
swapping every TRTEngineOp for a call of that function runs on a CPU, which checks that the
partitioning computes the same thing as the source (not TensorRT's own numerics).
"""

from __future__ import annotations

import collections
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

from jetson_seg.optimize.conversion_settings import ConversionSettings
from jetson_seg.optimize.freeze import FrozenModel

#: Ops that only carry data in or out; not counted as 'left to TensorFlow'.
_PLUMBING = {'Placeholder', 'Identity', 'Const', 'NoOp'}


@dataclass
class Segment:
    """One subgraph TF-TRT would hand to TensorRT."""

    name: str
    nodes: int
    op_counts: dict[str, int]


@dataclass
class SegmentReport:
    """What the TF-TRT rewrite did to a frozen graph."""

    nodes_before: int
    nodes_after: int
    segments: list[Segment] = field(default_factory=list)
    left_in_tensorflow: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # op type -> why it stayed in TF

    def text(self) -> str:
        lines = [f'TF-TRT rewrite: {self.nodes_before} -> {self.nodes_after} nodes, '
                 f'{len(self.segments)} TensorRT segment(s)']
        for seg in self.segments:
            by_count = sorted(seg.op_counts.items(), key=lambda kv: -kv[1])
            ops = ', '.join(f'{op} {n}' for op, n in by_count)
            lines.append(f'  {seg.name}: {seg.nodes} nodes ({ops})')
        if not self.left_in_tensorflow:
            lines.append('  left to TensorFlow: nothing')
        else:
            lines.append('  left to TensorFlow:')
        for op, n in sorted(self.left_in_tensorflow.items()):
            lines.append(f'    {op} x{n}: {self.reasons.get(op, "")}')
        return '\n'.join(lines)

    def as_dict(self) -> dict:
        return {'nodes_before': self.nodes_before, 'nodes_after': self.nodes_after,
                'segments': [seg.__dict__ for seg in self.segments],
                'left_in_tensorflow': self.left_in_tensorflow, 'reasons': self.reasons}


@contextmanager
def _op_denylist(op_types: tuple[str, ...]):
    """TF-TRT reads its op deny list from TF_TRT_OP_DENYLIST (op types, comma-separated)."""
    old = os.environ.get('TF_TRT_OP_DENYLIST')
    if op_types:
        os.environ['TF_TRT_OP_DENYLIST'] = ','.join(op_types)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop('TF_TRT_OP_DENYLIST', None)
        else:
            os.environ['TF_TRT_OP_DENYLIST'] = old


def rewrite_for_tensorrt(frozen: FrozenModel, settings: ConversionSettings):
    """Run TF-TRT's segmenter over `frozen`; returns (rewritten GraphDef, SegmentReport)."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    from jetson_seg.optimize.freeze import grappler_meta_graph

    meta = grappler_meta_graph(frozen.graph_def, frozen.input_name, frozen.output_name)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.meta_optimizer_iterations = 1
    rewrite.min_graph_nodes = -1
    trt = rewrite.custom_optimizers.add()
    trt.name = 'TensorRTOptimizer'
    params = trt.parameter_map
    params['minimum_segment_size'].i = settings.minimum_segment_size
    params['max_workspace_size_bytes'].i = settings.max_workspace_size_bytes
    params['precision_mode'].s = settings.precision_mode.encode()
    params['max_batch_size'].i = settings.max_batch_size
    params['is_dynamic_op'].b = settings.is_dynamic_op
    params['maximum_cached_engines'].i = settings.maximum_cached_engines
    params['use_calibration'].b = settings.use_calibration
    params['allow_build_at_runtime'].b = True
    with _op_denylist(settings.deny_op_types):
        # TF-TRT treats any other graph id as a function name and looks it up: without the
        # 'tf_graph' id the pass dereferences a missing function and crashes the process.
        rewritten = tf_optimizer.OptimizeGraph(config, meta, graph_id=b'tf_graph')
    return rewritten, _segment_report(frozen.graph_def, rewritten, settings)


def _why_left(op: str, settings: ConversionSettings, converters: set[str]) -> str:
    if op in settings.deny_op_types:
        return 'denied by deny_op_types'
    if op not in converters:
        return 'TF-TRT has no converter for this op type'
    return ('has a converter but was not placed in a segment: its attributes/shapes were '
            'rejected in implicit-batch mode, or its segment was smaller than '
            f'minimum_segment_size ({settings.minimum_segment_size})')


def _segment_report(before, after, settings: ConversionSettings) -> SegmentReport:
    from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils

    converters = set(_pywrap_py_utils.get_registered_op_converters())
    functions = {f.signature.name: f for f in after.library.function}
    report = SegmentReport(len(before.node), len(after.node))
    left = collections.Counter()
    for node in after.node:
        if node.op == 'TRTEngineOp':
            body = functions.get(node.attr['segment_func'].func.name)
            ops = collections.Counter(n.op for n in body.node_def) if body else {}
            report.segments.append(Segment(node.name, sum(ops.values()), dict(ops)))
        elif node.op not in _PLUMBING:
            left[node.op] += 1
    report.left_in_tensorflow = dict(left)
    report.reasons = {op: _why_left(op, settings, converters) for op in left}
    return report


def native_segments_graph(rewritten):
    """Copy of a rewritten GraphDef where each TRTEngineOp calls its native TF subgraph."""
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.CopyFrom(rewritten)
    for node in graph.node:
        if node.op != 'TRTEngineOp':
            continue
        func = node.attr['segment_func'].func.name
        tin, tout = node.attr['InT'], node.attr['OutT']
        for key in list(node.attr):
            if key not in ('InT', 'OutT'):
                del node.attr[key]
        node.op = 'PartitionedCall'
        node.attr['f'].func.name = func
        node.attr['Tin'].CopyFrom(tin)
        node.attr['Tout'].CopyFrom(tout)
        del node.attr['InT']
        del node.attr['OutT']
    return graph


def convert_with_tensorrt(saved_model_dir, signature: str, input_hw: tuple[int, int],
                          input_dtype: str, settings: ConversionSettings, out_dir,
                          build_batch_sizes, build_engines: bool, calibration) -> None:
    """Full TF-TRT conversion (GPU + TensorRT only): SavedModel with engines pre-built.

    The converter takes a SavedModel (the origin's path); Keras models are exported to one
    first. Engines are built with `build()` before `save()` so the first frame on the robot
    does not wait minutes for them.
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    height, width = input_hw
    with _op_denylist(settings.deny_op_types):
        converter = trt.TrtGraphConverterV2(
            input_saved_model_dir=str(saved_model_dir), input_saved_model_signature_key=signature,
            precision_mode=settings.precision_mode,
            max_workspace_size_bytes=settings.max_workspace_size_bytes,
            minimum_segment_size=settings.minimum_segment_size,
            maximum_cached_engines=settings.maximum_cached_engines,
            use_calibration=settings.use_calibration, allow_build_at_runtime=True)
        if settings.use_calibration:
            converter.convert(calibration_input_fn=lambda: (
                (tf.constant(frame[None]),) for frame in calibration()))
        else:
            converter.convert()
        if build_engines:
            converter.build(input_fn=lambda: (
                (tf.constant(np.zeros((n, height, width, 3), input_dtype)),)
                for n in build_batch_sizes))
        converter.save(str(out_dir))
