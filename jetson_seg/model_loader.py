"""Open a model folder with the requested engine, after every manifest and description check.

The description itself (model.json, the manifest's model section) is model_info's; this module
decides which engine runs which file.
"""

from __future__ import annotations

from pathlib import Path

from jetson_seg.engines.base import ENGINES, Engine
from jetson_seg.engines.gpu import configure_gpu_memory, onnxruntime_gpu, tensorflow_gpu
from jetson_seg.engines.onnxruntime import PROVIDERS
from jetson_seg.errors import ConfigurationError, EngineError, ModelError
from jetson_seg.model_formats import model_format
from jetson_seg.model_info import ModelInfo, default_model_dir, locate_model, parse_description
from jetson_seg.model_trust import (TFTRT_OPS, check_graph, check_onnx, check_saved_model,
                                    check_tflite)
from jetson_seg.optimize.artefacts import (INT8_CLASS_IOU, MANIFEST, read_manifest,
                                           source_digest)
from jetson_seg.optimize.sources import ModelSource

#: Values of the node's `precision` parameter. auto: the fastest artefact whose check passed
#: (INT8 LiteRT on a CPU when the optimizer made one), FP32 for a model converted at start-up.
PRECISIONS = ('auto', 'fp32', 'fp16', 'int8')
#: The optimizer output shipped beside the packaged default model (made by the optimizer).
DEFAULT_OPTIMIZED = 'optimized'
#: The optimizer target each engine serves, where the names differ.
TARGET_OF = {'onnxruntime': 'onnx'}


def auto_order(candidates: tuple[str, ...]) -> list[str]:
    """The `candidates` (engines that could serve the model) to try, fastest first.

    On this project's 2-core CPU LiteRT (XNNPACK) beat the frozen TF graph (README benchmarks);
    on a GPU, TF-TRT and TensorFlow use it and LiteRT does not. ONNX Runtime (an optimizer
    output's onnx target) comes after TF-TRT on a GPU, where its TensorRT provider runs, and
    after LiteRT on a CPU, where its CPU provider measured slower at one thread (README
    benchmarks); before TensorFlow, which it matched and which it spares loading. A GPU
    without TensorFlow (most Jetsons) but with ONNX Runtime's TensorRT or CUDA provider puts
    ONNX Runtime first. TensorFlow is asked about its GPU only when a TensorFlow engine is a
    candidate, so a LiteRT or ONNX model never imports it.
    """
    if len(candidates) == 1:
        return list(candidates)
    if {'tf', 'tftrt'} & set(candidates) and tensorflow_gpu():
        order = ('tftrt', 'onnxruntime', 'tf', 'litert')
    elif 'onnxruntime' in candidates and onnxruntime_gpu():
        order = ('onnxruntime', 'litert', 'tf')
    else:
        order = ('litert', 'onnxruntime', 'tf')
    return [name for name in order if name in candidates]


def default_model_path(log=None, model_dir: Path | None = None, engine: str = 'auto') -> Path:
    """The packaged default model: its shipped optimizer output while that is up to date.

    The output holds LiteRT only; another engine asked for by name gets model.keras. A stale
    output (model.keras or model.json changed since the optimizer ran) is ignored with a
    warning, and the model is converted at start-up instead.
    """
    model_dir = model_dir or default_model_dir()
    optimized = model_dir / DEFAULT_OPTIMIZED
    if (optimized / MANIFEST).is_file():
        manifest = read_manifest(optimized)
        if engine != 'auto' and TARGET_OF.get(engine, engine) not in manifest['targets']:
            return model_dir
        if manifest['model'].get('source_sha256') == source_digest(model_dir):
            return optimized
        if log is not None:
            log(f'{optimized} is stale (the default model changed since the optimizer ran); '
                f'converting {model_dir} at start-up instead')
    return model_dir


def open_model(model_path: str, engine: str = 'auto', threads: int = 0,
               allow_fallback: bool = False, log=None, trust: bool = False,
               precision: str = 'auto', onnx_providers: tuple[str, ...] = PROVIDERS,
               gpu_memory_limit_mb: int = 0) -> tuple[Engine, ModelInfo]:
    """Open `model_path` ('' = default model) with `engine`; raises JetsonSegError (the cause).

    `model_path` is a model folder (one of model.keras, model.h5, a SavedModel or model.tflite,
    plus model.json), a model file inside one, or an optimizer output folder (manifest.json).
    With `allow_fallback`, an engine that cannot run here is replaced by the automatic choice
    (and `log` is told why). `trust` lets models with code or file access load. `precision`
    picks among the artefacts an optimizer output holds (see PRECISIONS); `onnx_providers`
    are ONNX Runtime's execution providers in order of preference. `gpu_memory_limit_mb` caps
    TensorFlow's GPU memory (0: growth), applied only when a TensorFlow engine or conversion is
    about to run.
    """
    if engine not in ENGINES:
        raise ConfigurationError(f'unknown engine {engine!r}; choose one of {ENGINES}')
    if precision not in PRECISIONS:
        raise ConfigurationError(f'unknown precision {precision!r}; choose one of {PRECISIONS}')
    path = Path(model_path).expanduser() if model_path else default_model_path(log, None, engine)
    if not path.exists():
        raise ModelError(f'model path does not exist: {path}')

    def tensorflow_ready() -> None:  # just before TensorFlow first touches a GPU
        for line in configure_gpu_memory(gpu_memory_limit_mb):
            if log is not None:
                log(f'GPU {line}')

    if path.is_dir() and (path / MANIFEST).is_file():
        def opener(name: str) -> tuple[Engine, ModelInfo]:
            if name in ('tf', 'tftrt'):
                tensorflow_ready()
            return _open_artefacts(path, name, threads, precision, onnx_providers, log, trust)
        made = read_manifest(path)['targets']
        candidates = tuple(name for name in ('litert', 'tf', 'tftrt', 'onnxruntime')
                           if TARGET_OF.get(name, name) in made) or ('litert',)
    else:
        fmt = model_format(locate_model(path)[2])
        if precision not in ('auto', 'fp32') and 'onnxruntime' not in fmt.engines:
            raise EngineError(f'{path} is converted at start-up in FP32; for {precision} run '
                              f'the optimizer (precision_mode:={precision.upper()}) and serve '
                              f'its output')
        if fmt.needs_tensorflow:
            tensorflow_ready()
        source = ModelSource.load(path, trust)  # checked against the allow-lists first

        def opener(name: str) -> tuple[Engine, ModelInfo]:
            opened = source.engine(name, threads, onnx_providers, precision, log)
            return opened, _checked(source.info, opened, source.path)
        candidates = source.engines
    if engine == 'auto':
        errors = []
        for candidate in auto_order(candidates):
            try:
                return opener(candidate)
            except EngineError as exc:  # a model error is the same for every engine
                errors.append(f'{candidate}: {exc}')
        raise EngineError('no engine can run ' + str(path) + ': ' + '; '.join(errors))
    try:
        return opener(engine)
    except EngineError as exc:
        if not allow_fallback:
            raise
        if log is not None:
            log(f'engine {engine} cannot run here ({exc}); falling back to auto')
        return open_model(model_path, 'auto', threads, log=log, trust=trust,
                          precision=precision, onnx_providers=onnx_providers,
                          gpu_memory_limit_mb=gpu_memory_limit_mb)


def _checked(info: ModelInfo, engine: Engine, where: Path) -> ModelInfo:
    """The description checked against the opened network (the engine closed on a mismatch)."""
    try:
        return info.check_network(engine.input_hw, engine.output_channels, engine.input_dtype,
                                  str(where))
    except ModelError:
        engine.close()
        raise


def served_role(path: Path, target: dict, precision: str, log=None,
                float_role: str = 'fp32', kind: str = 'LiteRT') -> str:
    """The file of a LiteRT or ONNX target to serve: `precision`, or INT8 for auto if it holds.

    The optimizer publishes a file only after its check passed, so every file listed passed;
    auto takes INT8 only if its mean class IoU against the source reached INT8_CLASS_IOU and,
    where the optimizer timed both (ONNX), it was not slower; else the float file
    `float_role` (said in the log). FP16 is served only when asked:
    XNNPACK expands FP16 weights to FP32 on a CPU (no gain).
    """
    roles = [entry['role'] for entry in target.get('files', [])]
    if precision in ('auto', 'fp32') and 'int8' not in roles:
        return float_role
    if precision == 'auto':
        check = target.get('check', {})
        class_iou = check.get('INT8', target.get('check_int8', {})).get('class_iou', 0.0)
        speed = target.get('speed_ms', {})
        slower = speed.get('int8', 0.0) > speed.get('fp32', float('inf'))
        if class_iou >= INT8_CLASS_IOU and not slower:
            return 'int8'
        if log is not None and slower:
            log(f'serving FP32: the INT8 file in {path} ran slower where the optimizer ran '
                f'({speed["int8"]} ms against {speed["fp32"]} ms a frame; precision:=int8 '
                f'serves it anyway)')
        elif log is not None:
            log(f'serving FP32: the INT8 file in {path} keeps objects at class IoU '
                f'{class_iou:.3f} < {INT8_CLASS_IOU} against FP32 (precision:=int8 serves '
                f'it anyway, faster)')
        return float_role
    wanted = float_role if precision == 'fp32' else precision
    if wanted not in roles:
        raise EngineError(f'{path / MANIFEST} has no {precision} {kind} file (it has {roles}); '
                          f'rerun the optimizer with precision_mode:={precision.upper()}')
    return wanted


def _open_artefacts(path: Path, engine: str, threads: int, precision: str,
                    onnx_providers: tuple[str, ...], log,
                    trust: bool) -> tuple[Engine, ModelInfo]:
    """An optimizer output directory: files are checked against the manifest before use.

    An output is a program like any model: made from a trusted source it needs trust again,
    and each file passes the same allow-list as a source of its format (a manifest and its
    checksums can be written by anyone).
    """
    from jetson_seg.optimize.artefacts import verified_file

    manifest = read_manifest(path)
    if manifest['model'].get('trusted_source') and not trust:
        raise ModelError(f'{path} was made from a source trusted with trust_model:=true; '
                         f'serve it with trust_model:=true only if you trust that source')
    info = parse_description(manifest['model'], f'{path / MANIFEST} (model section)', path)
    target_name = TARGET_OF.get(engine, engine)
    target = manifest['targets'].get(target_name)
    if target is None:
        raise EngineError(f'{path / MANIFEST} has no {target_name!r} target (it has '
                          f'{sorted(manifest["targets"])}); rerun the optimizer with it')
    if engine == 'tf':
        if precision not in ('auto', 'fp32'):
            raise EngineError(f'the tf target of {path} is FP32; precision {precision} is '
                              f'served by litert or tftrt')
        import tensorflow as tf

        from jetson_seg.engines.tf_graph import FrozenGraphEngine
        graph_file = verified_file(path, manifest, 'tf', 'graph')
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(graph_file.read_bytes())
        if not trust:
            check_graph(graph_def, str(graph_file))
        return FrozenGraphEngine(graph_def, target['input_tensor'], target['output_tensor'],
                                 info.input_hw, info.output_channels, threads), info
    if engine == 'litert':
        from jetson_seg.engines.litert import LiteRtEngine
        role = served_role(path, target, precision, log)
        model_file = verified_file(path, manifest, 'litert', role)
        check_tflite(model_file, trust)
        opened = LiteRtEngine(model_file, threads, info.input_hw)
        opened.precision = role
        return opened, info
    if engine == 'onnxruntime':
        from jetson_seg.engines.onnxruntime import OnnxRuntimeEngine
        role = served_role(path, target, 'fp32' if precision == 'fp16' else precision, log,
                           float_role='model', kind='ONNX')
        model_file = verified_file(path, manifest, 'onnx', role)
        check_onnx(model_file, trust)
        opened = OnnxRuntimeEngine(model_file, threads, onnx_providers, info.input_hw,
                                   'auto' if role == 'int8' else precision, path, log,
                                   info.input.layout, info.input.name, info.output.name)
        if role == 'int8':
            opened.precision = 'int8'
        return opened, info
    built = target.get('settings', {}).get('precision_mode', 'FP32').lower()
    if precision not in ('auto', built):
        raise EngineError(f'the tftrt engines in {path} were built in {built}; rerun the '
                          f'optimizer with precision_mode:={precision.upper()}')
    from jetson_seg.engines.tftrt import TfTrtEngine, check_runnable_here
    check_runnable_here(path, target)
    saved_model = verified_file(path, manifest, 'tftrt', 'saved_model').parent
    check_saved_model(saved_model, trust, TFTRT_OPS)
    opened = TfTrtEngine(saved_model, info.input_hw, info.output_channels, info.output.name)
    opened.precision = built
    return opened, info
