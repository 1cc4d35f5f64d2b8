"""Freeze a trained Keras model into a lean inference GraphDef, reporting every step.

The steps follow the origin write-up: trace with BatchNorm in inference mode, turn variables into
constants, strip what the output does not need, remove duplicate subexpressions, and fold
constants and BatchNorm into the convolutions. Each step's node counts per op type are recorded so
a user can see what each pass bought.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

#: Grappler passes that fold BatchNorm and constants but keep plain Conv2D ops, so the result
#: stays convertible by TF-TRT (the remapper's _FusedConv2D is not).
PORTABLE_PASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ('strip unused nodes', ('pruning',)),
    ('remove duplicates', ('common_subgraph_elimination',)),
    ('fold constants and BatchNorm', ('constfold', 'arithmetic', 'dependency', 'constfold')),
)
#: Extra CPU-only pass: fuse Conv2D + BiasAdd + Relu into one kernel.
CPU_PASS: tuple[str, ...] = ('remap',)


@dataclass
class FreezeStep:
    """Node counts after one step."""

    name: str
    nodes: int
    op_counts: dict[str, int]


@dataclass
class FrozenModel:
    """A frozen GraphDef with the tensor names to feed and fetch, and the report of its steps."""

    graph_def: object
    input_name: str
    output_name: str
    input_hw: tuple[int, int]
    output_channels: int  # C of (N, H, W, C); 1 for an id map (N, H, W)
    steps: list[FreezeStep] = field(default_factory=list)
    signature: str | None = None  # the SavedModel signature it came from

    def report(self) -> str:
        """A table of node counts per step and the op types that changed."""
        lines = [f'{"step":34s} {"nodes":>6s}  change']
        prev = None
        for step in self.steps:
            change = ''
            if prev is not None:
                diff = {op: step.op_counts.get(op, 0) - prev.op_counts.get(op, 0)
                        for op in set(step.op_counts) | set(prev.op_counts)}
                change = ', '.join(f'{op} {d:+d}' for op, d in sorted(diff.items()) if d)
            lines.append(f'{step.name:34s} {step.nodes:6d}  {change}')
            prev = step
        return '\n'.join(lines)


def _step(name: str, graph_def) -> FreezeStep:
    counts = collections.Counter(node.op for node in graph_def.node)
    return FreezeStep(name, len(graph_def.node), dict(sorted(counts.items())))


def grappler_meta_graph(graph_def, input_name: str, output_name: str):
    """MetaGraphDef around a frozen graph with the fetch and a typed signature grappler needs."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name='')
        meta = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(), graph=graph)
        inp, out = graph.get_tensor_by_name(input_name), graph.get_tensor_by_name(output_name)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.append(output_name.split(':')[0])
    meta.collection_def['train_op'].CopyFrom(fetch)
    signature = meta.signature_def['serving_default']
    for tensor, info in ((inp, signature.inputs['image']), (out, signature.outputs['probs'])):
        info.name = tensor.name
        info.dtype = tensor.dtype.as_datatype_enum  # grappler fails with 'Type not set' without
        info.tensor_shape.CopyFrom(tensor.shape.as_proto())
    return meta


def run_grappler(graph_def, input_name: str, output_name: str, passes: tuple[str, ...]):
    """Run the named grappler passes once over a frozen GraphDef and return the result."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers.extend(passes)
    rewrite.meta_optimizer_iterations = 1
    rewrite.min_graph_nodes = -1
    return tf_optimizer.OptimizeGraph(
        config, grappler_meta_graph(graph_def, input_name, output_name))


def _const_value(node):
    import tensorflow as tf
    return tf.make_ndarray(node.attr['value'].tensor)


def _set_const(node, value) -> None:
    import tensorflow as tf
    node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value))


def _rewire(graph_def, old: str, new: str) -> None:
    for node in graph_def.node:
        for i, name in enumerate(node.input):
            if name == old or name == old + ':0':
                node.input[i] = new


def fold_depthwise_scale(graph_def):
    """Fold BatchNorm's per-channel scale into DepthwiseConv2dNative weights.

    Grappler folds the scale into Conv2D but leaves `Mul(depthwise(x, W), s)`; with a constant
    W and s this is `depthwise(x, W * s)`. A BatchToSpaceND between the two (dilated depthwise)
    is per-channel too, so the scale moves through it unchanged.
    """
    from tensorflow.core.framework import graph_pb2

    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    consumers = collections.Counter(i.split(':')[0].lstrip('^') for n in out.node
                                    for i in n.input)
    dropped = set()
    for mul in list(out.node):
        if mul.op != 'Mul' or len(mul.input) != 2:
            continue
        producer, scale = (nodes.get(i.split(':')[0]) for i in mul.input)
        if producer is None or scale is None or scale.op != 'Const':
            producer, scale = scale, producer
        if producer is None or scale is None or scale.op != 'Const':
            continue
        conv = producer
        if conv.op == 'BatchToSpaceND':
            conv = nodes.get(conv.input[0].split(':')[0])
        if conv is None or conv.op != 'DepthwiseConv2dNative' or consumers[conv.name] != 1 or \
                consumers[producer.name] != 1:
            continue
        weights = nodes.get(conv.input[1].split(':')[0])
        if weights is None or weights.op != 'Const' or consumers[weights.name] != 1:
            continue
        w, s = _const_value(weights), _const_value(scale).reshape(-1)
        if s.size != w.shape[2] * w.shape[3]:
            continue
        _set_const(weights, (w * s.reshape(w.shape[2], w.shape[3])).astype(w.dtype))
        _rewire(out, mul.name, producer.name)
        dropped.add(mul.name)
        if consumers[scale.name] == 1:
            dropped.add(scale.name)
    kept = [n for n in out.node if n.name not in dropped]
    del out.node[:]
    out.node.extend(kept)
    return out


def bias_add_from_add(graph_def):
    """Turn `AddV2(conv, per-channel const)` into BiasAdd so CPU kernels can fuse it."""
    from tensorflow.core.framework import graph_pb2

    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    for add in out.node:
        if add.op != 'AddV2' or len(add.input) != 2:
            continue
        a, b = (nodes.get(i.split(':')[0]) for i in add.input)
        if a is not None and a.op == 'Const':
            a, b = b, a
            add.input[0], add.input[1] = add.input[1], add.input[0]
        if a is None or b is None or b.op != 'Const' or a.op not in (
                'Conv2D', 'DepthwiseConv2dNative', 'BatchToSpaceND'):
            continue
        if _const_value(b).ndim > 1 and any(d != 1 for d in _const_value(b).shape[:-1]):
            continue
        _set_const(b, _const_value(b).reshape(-1))
        add.op = 'BiasAdd'
        add.attr['data_format'].s = b'NHWC'
    return out


def freeze_keras_model(model, for_cpu: bool = True) -> FrozenModel:
    """Freeze a Keras model (BatchNorm in inference mode, batch dimension left dynamic)."""
    import tensorflow as tf

    height, width, channels = model.input_shape[1:]
    spec = tf.TensorSpec((None, height, width, channels), model.inputs[0].dtype, name='image')
    return freeze_function(lambda x: model(x, training=False), spec, for_cpu)


def freeze_saved_model(path, input_name: str | None, output_name: str | None,
                       input_hw: tuple[int, int] | None, for_cpu: bool = True) -> FrozenModel:
    """Freeze one signature of a TensorFlow SavedModel into the same lean graph as Keras models.

    The signature is 'serving_default', or the one whose input is `input_name`; a signature
    with several inputs or outputs needs `input_name` / `output_name` (model.json). A dynamic
    height/width is fixed to `input_hw`. The caller has checked the SavedModel's ops first
    (model_trust): loading runs its initializers.
    """
    import tensorflow as tf

    from jetson_seg.errors import ModelError

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TensorFlow raises many types for a bad SavedModel
        raise ModelError(f'cannot load SavedModel {path}: {exc}') from exc
    where = f'SavedModel {path}'
    signature_key, fn = _pick_signature(loaded.signatures, input_name, where)
    inputs = fn.structured_input_signature[1]
    outputs = fn.structured_outputs
    in_key = _one_name(inputs, input_name, 'input', signature_key, where)
    out_key = _one_name(outputs, output_name, 'output', signature_key, where)
    shape = list(inputs[in_key].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f'{where}: input {in_key!r} has shape {shape}; expected NHWC with 3 '
                         f'channels (an NCHW model must be exported NHWC)')
    height, width = shape[1], shape[2]
    if height is None or width is None:
        if input_hw is None:
            raise ModelError(f'{where}: input size is dynamic; give input.height and '
                             f'input.width in model.json')
        height, width = input_hw
    spec = tf.TensorSpec((None, height, width, 3), inputs[in_key].dtype, name='image')
    frozen = freeze_function(lambda x: fn(**{in_key: x})[out_key], spec, for_cpu,
                             keep_alive=loaded)
    frozen.signature = signature_key
    return frozen


def _pick_signature(signatures, input_name: str | None, where: str):
    from jetson_seg.errors import ModelError

    keys = sorted(signatures.keys())
    if not keys:
        raise ModelError(f'{where} has no signatures; export it with a serving signature')
    if input_name is not None:
        matching = [k for k in keys if input_name in signatures[k].structured_input_signature[1]]
        if len(matching) == 1:
            return matching[0], signatures[matching[0]]
    if 'serving_default' in keys:
        return 'serving_default', signatures['serving_default']
    if len(keys) == 1:
        return keys[0], signatures[keys[0]]
    raise ModelError(f'{where} has signatures {keys} and none is serving_default; name the '
                     f'input to use as input.name in model.json')


def _one_name(tensors: dict, wanted: str | None, kind: str, signature: str, where: str) -> str:
    from jetson_seg.errors import ModelError

    names = sorted(tensors)
    if wanted is not None:
        if wanted not in tensors:
            raise ModelError(f'{where}: signature {signature!r} has no {kind} {wanted!r} (it has '
                             f'{names}); fix {kind}.name in model.json')
        return wanted
    if len(names) != 1:
        raise ModelError(f'{where}: signature {signature!r} has {kind}s {names}; name the one '
                         f'to use as {kind}.name in model.json')
    return names[0]


def freeze_function(fn, spec, for_cpu: bool = True, keep_alive=None) -> FrozenModel:
    """Trace `fn` for `spec`, freeze it and optimize the graph step by step.

    `keep_alive` holds the object the function's variables belong to (a loaded SavedModel)
    until freezing is done: without a reference TensorFlow frees them mid-way.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    concrete = tf.function(fn).get_concrete_function(spec)
    steps = [_step('traced (variables)', concrete.graph.as_graph_def())]
    frozen_fn = convert_variables_to_constants_v2(concrete)
    graph_def = frozen_fn.graph.as_graph_def()
    steps.append(_step('variables -> constants', graph_def))
    input_name = frozen_fn.inputs[0].name
    output_name = frozen_fn.outputs[0].name
    for name, passes in PORTABLE_PASSES:
        graph_def = run_grappler(graph_def, input_name, output_name, passes)
        steps.append(_step(name, graph_def))
    graph_def = bias_add_from_add(fold_depthwise_scale(graph_def))
    steps.append(_step('fold BatchNorm into depthwise', graph_def))
    if for_cpu:
        for node in graph_def.node:  # the remapper only fuses ops placed on a device
            node.device = node.device or '/device:CPU:0'
        graph_def = run_grappler(graph_def, input_name, output_name, CPU_PASS)
        steps.append(_step('fuse conv+bias+relu (CPU)', graph_def))
    out_shape = frozen_fn.outputs[0].shape
    channels = int(out_shape[-1]) if len(out_shape) == 4 else 1  # (N, H, W): an id map
    return FrozenModel(graph_def, input_name, output_name, tuple(spec.shape[1:3]), channels,
                       steps)
