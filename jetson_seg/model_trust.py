"""A model is a program: check a model file against allow-lists before anything deserializes it.

Keras configs name classes and functions that Keras imports; SavedModels hold TensorFlow ops
(file writes, Python calls, datasets) that run when a function or initializer runs; LiteRT
custom ops pull in the Flex delegate (any TensorFlow op) when TensorFlow is loaded; ONNX files
may name custom operator domains and external data anywhere on disk. Each check here reads the
file as data (JSON, protobuf, flatbuffer) and accepts only what is known to be pure tensor
computation. Anything else is refused with the layer, op or function it found, unless the user
sets `trust_model:=true`. Deny-lists lose to the next unlisted op; these are allow-lists.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Iterator

from jetson_seg.errors import ModelError

TRUST_HINT = ('a model is a program: set trust_model:=true only if you trust its source '
              '(README "Security")')

# --- Keras ---------------------------------------------------------------------------------------

#: Built-in Keras layers that compute on tensors only (no Python in their config).
KERAS_LAYERS = frozenset({
    'InputLayer', 'Functional', 'Sequential', 'Model',
    'Conv1D', 'Conv2D', 'Conv3D', 'Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose',
    'DepthwiseConv1D', 'DepthwiseConv2D', 'SeparableConv1D', 'SeparableConv2D',
    'Dense', 'EinsumDense', 'Embedding',
    'BatchNormalization', 'LayerNormalization', 'GroupNormalization', 'UnitNormalization',
    'Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'Softmax',
    'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D',
    'AveragePooling3D', 'GlobalAveragePooling1D', 'GlobalAveragePooling2D',
    'GlobalAveragePooling3D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalMaxPooling3D',
    'UpSampling1D', 'UpSampling2D', 'UpSampling3D', 'ZeroPadding1D', 'ZeroPadding2D',
    'ZeroPadding3D', 'Cropping1D', 'Cropping2D', 'Cropping3D',
    'Concatenate', 'Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum', 'Dot',
    'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianNoise',
    'GaussianDropout', 'AlphaDropout', 'ActivityRegularization',
    'Reshape', 'Permute', 'Flatten', 'RepeatVector', 'Identity', 'Masking',
    'Rescaling', 'Resizing', 'Normalization', 'CenterCrop',
    'MultiHeadAttention', 'Attention', 'AdditiveAttention',
})
#: Built-in objects layers carry in their config: initializers, regularizers, constraints,
#: dtype policies.
KERAS_OBJECTS = frozenset({
    'Constant', 'GlorotNormal', 'GlorotUniform', 'HeNormal', 'HeUniform', 'IdentityInitializer',
    'LecunNormal', 'LecunUniform', 'Ones', 'Orthogonal', 'OrthogonalInitializer',
    'RandomNormal', 'RandomUniform', 'TruncatedNormal', 'VarianceScaling', 'Zeros',
    'L1', 'L2', 'L1L2', 'OrthogonalRegularizer',
    'MaxNorm', 'MinMaxNorm', 'NonNeg', 'UnitNorm',
    'DTypePolicy', 'FloatDTypePolicy', 'QuantizedDTypePolicy', 'QuantizedFloat8DTypePolicy',
    'Policy',
})
#: Values Keras rebuilds from data alone (tensors, arrays, bytes, slices).
KERAS_VALUES = frozenset({'__keras_tensor__', '__tensor__', '__numpy__', '__bytes__',
                          '__ellipsis__', '__slice__'})
#: Built-in activation functions a config may name as a 'function' object.
KERAS_ACTIVATIONS = frozenset({
    'celu', 'elu', 'exponential', 'gelu', 'glu', 'hard_shrink', 'hard_sigmoid', 'hard_silu',
    'hard_swish', 'hard_tanh', 'leaky_relu', 'linear', 'log_sigmoid', 'log_softmax', 'mish',
    'relu', 'relu6', 'selu', 'sigmoid', 'silu', 'soft_shrink', 'softmax', 'softplus',
    'softsign', 'sparse_plus', 'sparsemax', 'squareplus', 'swish', 'tanh', 'tanh_shrink',
    'threshold',
})
#: Modules Keras may import a class from: the public API and the model classes' own modules.
#: No entry (legacy .h5) means Keras's own tables.
KERAS_MODULES = frozenset({None, 'keras', 'keras.layers', 'keras.initializers',
                           'keras.regularizers', 'keras.constraints', 'keras.activations',
                           'keras.models', 'keras.dtype_policies', 'keras.mixed_precision',
                           'keras.src.models.functional', 'keras.src.models.sequential',
                           'keras.src.models.model'})
#: Modules Keras searches for a named function.
KERAS_FUNCTION_MODULES = frozenset({'keras.activations', 'keras.src.activations.activations',
                                    'builtins'})


def _keras_objects(config: object, layer: str) -> Iterator[tuple[dict, str]]:
    """Every serialized object in `config` with the name of the layer that holds it."""
    if isinstance(config, list):
        for value in config:
            yield from _keras_objects(value, layer)
        return
    if not isinstance(config, dict):
        return
    if 'class_name' in config:
        inner = config.get('config')
        if isinstance(inner, dict) and isinstance(inner.get('name'), str):
            layer = inner['name']
        yield config, layer
    for key, value in config.items():
        if key != 'compile_config':  # models load with compile=False: never deserialized
            yield from _keras_objects(value, layer)


def keras_config_problem(config: object) -> str | None:
    """Why this Keras config is not plain built-in layers, or None when it is."""
    for obj, layer in _keras_objects(config, 'model'):
        name, module = obj['class_name'], obj.get('module')
        registered = obj.get('registered_name')
        if not isinstance(name, str):
            return f'layer {layer!r} has a class name that is not text ({name!r})'
        if name in KERAS_VALUES:
            continue
        if name == 'function':
            function = obj.get('config')
            if module not in KERAS_FUNCTION_MODULES or function not in KERAS_ACTIVATIONS or \
                    registered not in (None, function, 'function'):
                return (f'layer {layer!r} names the function {function!r} of module '
                        f'{module!r} (only built-in activations load)')
            continue
        if name not in KERAS_LAYERS | KERAS_OBJECTS:
            kind = 'Python code (Lambda)' if 'lambda' in name.lower() else 'not a built-in ' \
                'Keras layer'
            return f'layer {layer!r} is {name!r}: {kind}'
        if module not in KERAS_MODULES:
            return f'layer {layer!r} ({name}) is imported from module {module!r}, not from Keras'
        if registered not in (None, name):
            return (f'layer {layer!r} ({name}) is registered as {registered!r}, another class '
                    f'than it claims')
    return None


def keras_config(path: Path) -> object:
    """The model config of a .keras archive or legacy .h5 file, read as JSON only."""
    try:
        if path.suffix.lower() == '.keras':
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read('config.json'))
        import h5py

        with h5py.File(path, 'r') as handle:
            raw = handle.attrs.get('model_config')
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f'cannot load Keras model {path}: its config is unreadable ({exc})') \
            from exc
    if raw is None:
        raise ModelError(f'{path} holds no model_config (weights only?); save the whole model')
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ModelError(f'{path}: model_config is not JSON: {exc}') from exc


def check_keras(path: Path, trust: bool) -> None:
    """Refuse a .keras/.h5 whose config reaches beyond built-in layers, unless trusted."""
    if trust:
        return
    problem = keras_config_problem(keras_config(path))
    if problem:
        raise ModelError(f'{path}: {problem}; {TRUST_HINT}')


# --- TensorFlow graphs ---------------------------------------------------------------------------

#: Pure tensor ops: math, neural-network, array, image, control flow, function calls and
#: resource variables. No file, Python, dataset, queue, summary or printing op is here.
TF_OPS = frozenset({
    'Const', 'Placeholder', 'PlaceholderWithDefault', 'Identity', 'IdentityN', 'NoOp',
    'StopGradient', 'PreventGradient', 'Snapshot', 'CheckNumerics', 'Assert', 'EnsureShape',
    'PartitionedCall', 'StatefulPartitionedCall', 'If', 'StatelessIf', 'While',
    'StatelessWhile', 'Case', 'StatelessCase',
    'VarHandleOp', 'ReadVariableOp', 'AssignVariableOp', 'AssignAddVariableOp',
    'AssignSubVariableOp', 'VarIsInitializedOp', 'DestroyResourceOp', 'DisableCopyOnRead',
    'Variable', 'VariableV2', 'Assign', 'ResourceGather',
    'Add', 'AddV2', 'AddN', 'Sub', 'Mul', 'MulNoNan', 'Div', 'DivNoNan', 'RealDiv',
    'FloorDiv', 'FloorMod', 'TruncateDiv', 'TruncateMod', 'Mod', 'Neg', 'Abs', 'Sign',
    'Reciprocal', 'Inv', 'Square', 'SquaredDifference', 'Sqrt', 'Rsqrt', 'Exp', 'Expm1',
    'Log', 'Log1p', 'Pow', 'Maximum', 'Minimum', 'Floor', 'Ceil', 'Round', 'Rint', 'Erf',
    'Erfc', 'Sin', 'Cos', 'Tan', 'Atan', 'Atan2', 'Tanh', 'Sigmoid', 'ClipByValue',
    'IsNan', 'IsInf', 'IsFinite', 'Equal', 'NotEqual', 'Less', 'LessEqual', 'Greater',
    'GreaterEqual', 'LogicalAnd', 'LogicalOr', 'LogicalNot', 'Select', 'SelectV2',
    'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'LeftShift', 'RightShift',
    'MatMul', 'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3', 'Einsum', 'Cumsum', 'Cumprod',
    'Sum', 'Mean', 'Max', 'Min', 'Prod', 'All', 'Any', 'ArgMax', 'ArgMin',
    'Conv2D', 'Conv3D', 'DepthwiseConv2dNative', 'Conv2DBackpropInput',
    'Conv3DBackpropInputV2', 'DepthwiseConv2dNativeBackpropInput', 'BiasAdd', 'BiasAddV1',
    'FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3', 'LRN',
    'Relu', 'Relu6', 'Elu', 'Selu', 'LeakyRelu', 'Softplus', 'Softsign', 'Softmax',
    'LogSoftmax', 'MaxPool', 'MaxPoolV2', 'MaxPool3D', 'AvgPool', 'AvgPool3D',
    'MaxPoolWithArgmax', 'Dilation2D',
    '_FusedConv2D', '_FusedDepthwiseConv2dNative', '_FusedMatMul', '_FusedBatchNormEx',
    'Cast', 'Bitcast', 'Shape', 'ShapeN', 'Size', 'Rank', 'Reshape', 'Squeeze', 'ExpandDims',
    'Transpose', 'ConjugateTranspose', 'Concat', 'ConcatV2', 'ConcatOffset', 'Pack', 'Unpack',
    'Split', 'SplitV', 'Slice', 'StridedSlice', 'Tile', 'Fill', 'ZerosLike', 'OnesLike',
    'Range', 'LinSpace', 'Pad', 'PadV2', 'MirrorPad', 'Reverse', 'ReverseV2', 'Gather',
    'GatherV2', 'GatherNd', 'ScatterNd', 'TensorScatterUpdate', 'TensorScatterAdd', 'OneHot',
    'BroadcastTo', 'BroadcastArgs', 'BroadcastGradientArgs', 'Where', 'TopKV2', 'Unique',
    'SpaceToBatchND', 'BatchToSpaceND', 'SpaceToDepth', 'DepthToSpace', 'MatrixBandPart',
    'ResizeBilinear', 'ResizeNearestNeighbor', 'ResizeBicubic', 'ResizeArea',
    'ScaleAndTranslate', 'CropAndResize', 'ExtractImagePatches', 'AdjustContrastv2',
    'RGBToHSV', 'HSVToRGB',
    'FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxVarsPerChannel', 'FakeQuantWithMinMaxArgs',
    'QuantizeAndDequantizeV2', 'QuantizeAndDequantizeV3', 'QuantizeAndDequantizeV4',
})
#: What a SavedModel's own saver functions may also do: write a checkpoint (the save function)
#: and read one back (the restore function). They run when a model is saved or its variables
#: restored, never while it serves, and nothing else may use these ops.
TF_SAVE_OPS = frozenset({'SaveV2', 'MergeV2Checkpoints', 'ShardedFilename', 'StringJoin',
                         'StaticRegexFullMatch'})
TF_RESTORE_OPS = frozenset({'RestoreV2'})
#: A TF-TRT graph's engine op (its segment's native function is checked like any other).
TFTRT_OPS = frozenset({'TRTEngineOp'})


def _called_functions(node) -> Iterator[str]:
    """Names of the functions a NodeDef calls.

    Its op, when that is a function, and every function-valued attribute (If/While branches,
    dataset and reduce functions...).
    """
    yield node.op
    for value in node.attr.values():
        if value.HasField('func'):
            yield value.func.name
        for func in value.list.func:
            yield func.name


def check_graph(graph_def, where: str, saver_roots: dict[str, frozenset[str]] | None = None,
                extra_ops: frozenset[str] = frozenset(), loaded: tuple[str, ...] = ()) -> None:
    """Refuse a GraphDef (and every function in its library) that runs an op not on TF_OPS.

    `saver_roots` maps the saver's save and restore nodes to the extra ops the functions they
    alone reach may use (TF_SAVE_OPS, TF_RESTORE_OPS). Unreferenced library functions are
    checked too: a loader may run any of them (resource initializers, dataset functions), and
    the functions named in `loaded` (a SavedModel's object graph) never get the saver's ops.
    """
    saver_roots = saver_roots or {}
    functions = {f.signature.name: f for f in graph_def.library.function}

    def reach(nodes, names=()) -> set[str]:
        seen: set[str] = set()
        stack = [name for node in nodes for name in _called_functions(node) if name in functions]
        stack += [name for name in names if name in functions]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack += [called for node in functions[name].node_def
                          for called in _called_functions(node) if called in functions]
        return seen

    allowed = TF_OPS | extra_ops
    strict = reach([n for n in graph_def.node if n.name not in saver_roots], loaded)
    extra: dict[str | None, frozenset[str]] = {}  # function name (None: the graph) -> extra ops
    for root in graph_def.node:
        if root.name in saver_roots:
            for name in reach([root]) - strict:
                extra[name] = extra.get(name, frozenset()) | saver_roots[root.name]
    scopes = [(None, n) for n in graph_def.node] + [
        (name, n) for name, f in functions.items() for n in f.node_def]
    found = {}  # op -> where it was first seen
    for function, node in scopes:
        if node.op in functions or node.op in allowed or node.op in extra.get(function, ()):
            continue
        scope = 'the graph' if function is None else f'function {function!r}'
        found.setdefault(node.op, f'{node.op!r} (node {node.name!r} in {scope})')
    if found:
        raise ModelError(f'{where}: ops that are not pure tensor ops: '
                         f'{", ".join(list(found.values())[:6])}; {TRUST_HINT}')


def check_saved_model(folder: Path, trust: bool,
                      extra_ops: frozenset[str] = frozenset()) -> None:
    """Read saved_model.pb as a protobuf (nothing loaded or run) and check every graph."""
    if trust:
        return
    from tensorflow.core.protobuf import saved_model_pb2

    path = folder / 'saved_model.pb'
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and OSError alike: not a SavedModel
        raise ModelError(f'cannot read {path}: {exc}') from exc
    for meta_graph in saved.meta_graphs:
        saver = meta_graph.saver_def
        roots = {saver.save_tensor_name.split(':')[0]: TF_SAVE_OPS,
                 saver.restore_op_name.split(':')[0]: TF_RESTORE_OPS}
        roots.pop('', None)
        check_graph(meta_graph.graph_def, str(path), roots, extra_ops,
                    tuple(meta_graph.object_graph_def.concrete_functions))


def check_graph_file(path: Path, trust: bool) -> None:
    """A frozen GraphDef file (the optimizer's tf target), checked before TensorFlow runs it."""
    if trust:
        return
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError: not a GraphDef
        raise ModelError(f'cannot read {path}: {exc}') from exc
    check_graph(graph_def, str(path))


# --- LiteRT --------------------------------------------------------------------------------------

#: TFLite's builtin operator code for a custom op (schema.fbs BuiltinOperator.CUSTOM).
TFLITE_CUSTOM = 32
#: Custom ops LiteRT's XNNPACK delegate implements natively (MediaPipe's segmenters use them):
#: tensor kernels inside the runtime, no code from the model. Every other custom op, Flex ops
#: (any TensorFlow op, file writes included) first, is refused.
TFLITE_NATIVE_CUSTOM_OPS = frozenset({'Convolution2DTransposeBias', 'MaxPoolingWithArgmax2D',
                                      'MaxUnpooling2D'})


def tflite_custom_ops(model: bytes) -> list[str]:
    """Names of the custom operators a TFLite flatbuffer declares (read with flatbuffers)."""
    from flatbuffers import encode, number_types, table

    if len(model) < 8 or model[4:8] != b'TFL3':
        raise ModelError('not a TFLite flatbuffer (no TFL3 identifier)')
    buf = bytearray(model)
    root = table.Table(buf, encode.Get(number_types.UOffsetTFlags.packer_type, buf, 0))
    codes = root.Offset(6)  # Model.operator_codes (field 1)
    found = []
    for i in range(root.VectorLen(codes) if codes else 0):
        code = table.Table(buf, root.Indirect(root.Vector(codes) + 4 * i))
        deprecated = code.Offset(4)  # OperatorCode.deprecated_builtin_code (int8)
        builtin = code.Offset(10)    # OperatorCode.builtin_code (int32)
        value = max(code.Get(number_types.Int8Flags, code.Pos + deprecated) if deprecated else 0,
                    code.Get(number_types.Int32Flags, code.Pos + builtin) if builtin else 0)
        if value == TFLITE_CUSTOM:
            name = code.Offset(6)    # OperatorCode.custom_code (string)
            found.append(code.String(code.Pos + name).decode('utf-8', 'replace') if name
                         else '<unnamed>')
    return found


def check_tflite(model: Path | bytes, trust: bool, where: str = '') -> None:
    """Refuse Flex and custom operators (other than the runtime's native ones) unless trusted."""
    if trust:
        return
    where = where or str(model)
    try:
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        custom = [op for op in tflite_custom_ops(data) if op not in TFLITE_NATIVE_CUSTOM_OPS]
    except ModelError as exc:
        raise ModelError(f'{where}: {exc}') from exc
    except Exception as exc:  # a truncated or corrupt flatbuffer
        raise ModelError(f'{where} is not a readable LiteRT model: {exc!r}') from exc
    if custom:
        flex = ' (Flex: TensorFlow ops, file access included)' if any(
            op.startswith('Flex') for op in custom) else ''
        raise ModelError(f'{where}: custom operators {", ".join(sorted(set(custom)))}{flex}; '
                         f'only builtin LiteRT operators load; {TRUST_HINT}')


# --- ONNX ----------------------------------------------------------------------------------------

#: Operator domains ONNX Runtime implements from the standard: ai.onnx ('' too) and ai.onnx.ml.
ONNX_DOMAINS = frozenset({'', 'ai.onnx', 'ai.onnx.ml'})


def _onnx_graphs(graph) -> Iterator[object]:
    """A graph and every subgraph (If/Loop/Scan bodies) inside it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField('g'):
                yield from _onnx_graphs(attr.g)
            for sub in attr.graphs:
                yield from _onnx_graphs(sub)


def _onnx_tensors(graph) -> Iterator[object]:
    """Tensors that may point at external data: initializers and Constant/attribute values."""
    yield from graph.initializer
    yield from (sparse.values for sparse in graph.sparse_initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField('t'):
                yield attr.t
            yield from attr.tensors


def check_onnx(path: Path, trust: bool) -> None:
    """Refuse custom operator domains and external data outside the model's folder."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, OSError: not an ONNX file
        raise ModelError(f'cannot read ONNX model {path}: {exc}') from exc
    folder = path.parent.resolve()
    local = {(f.domain, f.name): f for f in model.functions}
    for graph in _onnx_graphs(model.graph):
        for tensor in _onnx_tensors(graph):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            location = {e.key: e.value for e in tensor.external_data}.get('location', '')
            target = (folder / location).resolve()
            if not location or Path(location).is_absolute() or \
                    not target.is_relative_to(folder):
                raise ModelError(f'{path}: tensor {tensor.name!r} keeps its data at '
                                 f'{location!r}, outside the model folder; put the data file '
                                 f'beside model.onnx')
        if trust:
            continue
        nodes = list(graph.node) + [n for f in local.values() for n in f.node]
        for node in nodes:
            if node.domain not in ONNX_DOMAINS and (node.domain, node.op_type) not in local:
                raise ModelError(f'{path}: node {node.name!r} is {node.op_type!r} of the custom '
                                 f'domain {node.domain!r}; only ai.onnx and ai.onnx.ml operators '
                                 f'load; {TRUST_HINT}')


# --- one entry -----------------------------------------------------------------------------------

def check_model_file(model_file: Path, fmt: str, trust: bool) -> None:
    """Check a model file of format `fmt` (model_formats.FORMATS) before it is opened."""
    model_file = Path(model_file)
    if fmt in ('keras', 'h5'):
        check_keras(model_file, trust)
    elif fmt == 'saved_model':
        folder = model_file if model_file.is_dir() else model_file.parent
        check_saved_model(folder, trust)
    elif fmt == 'tflite':
        check_tflite(model_file, trust)
    elif fmt == 'onnx':
        check_onnx(model_file, trust)
    else:
        raise ModelError(f'{model_file}: no safety check for format {fmt!r}')
