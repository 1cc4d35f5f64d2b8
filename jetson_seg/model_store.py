"""Open a model folder with the requested engine, after every manifest and description check.

The description itself (model.json, the manifest's model section) is model_info's; this module
decides which engine runs which file.
"""

from __future__ import annotations

from pathlib import Path

from jetson_seg.engines.base import ENGINES, Engine
from jetson_seg.engines.gpu import has_gpu
from jetson_seg.errors import ConfigurationError, EngineError, JetsonSegError, ModelError
from jetson_seg.model_info import (KERAS_FILE, MODEL_JSON, ModelInfo, default_model_dir,
                                   load_keras, parse_description, read_model_info)
from jetson_seg.optimize.artefacts import MANIFEST


def _auto_order(has_gpu: bool) -> tuple[str, ...]:
    """Engines to try, fastest first.

    On this project's 2-core CPU LiteRT (XNNPACK) beat the frozen TF graph (README benchmarks);
    on a GPU, TF-TRT and TensorFlow use it and LiteRT does not.
    """
    return ('tftrt', 'tf', 'litert') if has_gpu else ('litert', 'tf')


def open_model(model_path: str, engine: str = 'auto', threads: int = 0,
               allow_fallback: bool = False, log=None) -> tuple[Engine, ModelInfo]:
    """Open `model_path` ('' = default model) with `engine`; raises JetsonSegError (the cause).

    `model_path` is a Keras model (file or directory with model.keras + model.json) or an
    optimizer output directory (manifest.json). With `allow_fallback`, an engine that cannot
    run here is replaced by the automatic choice (and `log` is told why).
    """
    if engine not in ENGINES:
        raise ConfigurationError(f'unknown engine {engine!r}; choose one of {ENGINES}')
    path = Path(model_path).expanduser() if model_path else default_model_dir()
    if not path.exists():
        raise ModelError(f'model path does not exist: {path}')
    opener = _open_artefacts if (path / MANIFEST).is_file() else _open_keras
    if engine == 'auto':
        errors = []
        for candidate in _auto_order(has_gpu()):
            try:
                return opener(path, candidate, threads)
            except JetsonSegError as exc:
                errors.append(f'{candidate}: {exc}')
        raise EngineError('no engine can run ' + str(path) + ': ' + '; '.join(errors))
    try:
        return opener(path, engine, threads)
    except EngineError as exc:
        if not allow_fallback:
            raise
        if log is not None:
            log(f'engine {engine} cannot run here ({exc}); falling back to auto')
        return open_model(model_path, 'auto', threads)


def _open_keras(path: Path, engine: str, threads: int) -> tuple[Engine, ModelInfo]:
    """A Keras model frozen (tf) or converted to LiteRT in memory at start-up."""
    model_dir = path.parent if path.is_file() else path
    keras_file = path if path.is_file() else path / KERAS_FILE
    if not keras_file.is_file():
        raise ModelError(f'no {KERAS_FILE} in {model_dir}')
    if engine == 'tftrt':
        raise EngineError('tftrt needs engines converted by the optimizer on the target GPU: '
                          'run optimizer_node and point model_path at its output directory')
    info = read_model_info(model_dir)
    try:
        keras_model = load_keras(keras_file)
    except Exception as exc:  # Keras raises many types for a bad file; report them all alike
        raise ModelError(f'cannot load Keras model {keras_file}: {exc}') from exc
    shape = tuple(keras_model.input_shape[1:3])
    classes = int(keras_model.output_shape[-1])
    if shape != info.input_hw or classes != len(info.class_names):
        raise ModelError(f'{keras_file} does not match {model_dir / MODEL_JSON}: input '
                         f'{shape} vs {info.input_hw}, classes {classes} '
                         f'vs {len(info.class_names)}')
    if engine == 'litert':
        from jetson_seg.optimize.convert_litert import convert_to_litert
        from jetson_seg.engines.litert import LiteRtEngine
        return LiteRtEngine(convert_to_litert(keras_model, 'FP32'), classes, threads), info
    from jetson_seg.engines.tf_graph import FrozenGraphEngine
    from jetson_seg.optimize.freeze import freeze_keras_model

    frozen = freeze_keras_model(keras_model, for_cpu=not has_gpu())  # CPU fusions pin to CPU
    return FrozenGraphEngine.from_frozen(frozen, threads), info


def _open_artefacts(path: Path, engine: str, threads: int) -> tuple[Engine, ModelInfo]:
    """An optimizer output directory: files are checked against the manifest before use."""
    from jetson_seg.optimize.artefacts import read_manifest, verified_file

    manifest = read_manifest(path)
    info = parse_description(manifest['model'], f'{path / MANIFEST} (model section)', path)
    target = manifest['targets'].get(engine)
    if target is None:
        raise EngineError(f'{path / MANIFEST} has no {engine!r} target (it has '
                          f'{sorted(manifest["targets"])}); rerun the optimizer with it')
    if engine == 'tf':
        import tensorflow as tf

        from jetson_seg.engines.tf_graph import FrozenGraphEngine
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(verified_file(path, manifest, 'tf', 'graph').read_bytes())
        return FrozenGraphEngine(graph_def, target['input_tensor'], target['output_tensor'],
                                 info.input_hw, len(info.class_names), threads), info
    if engine == 'litert':
        from jetson_seg.engines.litert import LiteRtEngine
        return LiteRtEngine(verified_file(path, manifest, 'litert', 'fp32'),
                            len(info.class_names), threads), info
    from jetson_seg.engines.tftrt import open_tftrt
    return open_tftrt(path, manifest, info), info
