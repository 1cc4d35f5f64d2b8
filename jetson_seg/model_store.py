"""Find a model on disk, read its metadata, and open it with the requested engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jetson_seg.optimize.artefacts import MANIFEST
from jetson_seg.engines.base import Engine, EngineError
from jetson_seg.ros.parameters import ENGINES

KERAS_FILE = 'model.keras'
METADATA_FILE = 'model.json'


@dataclass(frozen=True)
class ModelInfo:
    """What the node needs to know about a model besides running it."""

    path: Path
    class_names: tuple[str, ...]
    class_colors: tuple[tuple[int, int, int], ...]
    input_hw: tuple[int, int]


def default_model_dir() -> Path:
    """The packaged default model: the ROS share directory, else the source tree."""
    try:
        from ament_index_python.packages import (PackageNotFoundError,
                                                 get_package_share_directory)
        try:
            shared = Path(get_package_share_directory('jetson_seg')) / 'models' / 'default'
            if (shared / KERAS_FILE).is_file():
                return shared
        except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parent.parent / 'models' / 'default'


def read_model_info(model_dir: Path) -> ModelInfo:
    """Parse model.json beside a model; every problem names the file and what is wrong."""
    meta_path = model_dir / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text())
        names = tuple(str(n) for n in meta['class_names'])
        colors = tuple(tuple(int(c) for c in rgb) for rgb in meta['class_colors'])
        input_hw = (int(meta['input']['height']), int(meta['input']['width']))
    except FileNotFoundError as exc:
        raise EngineError(f'model metadata missing: {meta_path}') from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise EngineError(f'model metadata {meta_path} is invalid: {exc!r}') from exc
    if len(colors) != len(names) or any(len(c) != 3 for c in colors):
        raise EngineError(f'{meta_path}: class_colors must give one RGB triple per class')
    return ModelInfo(model_dir, names, colors, input_hw)


def _has_gpu() -> bool:
    import tensorflow as tf
    return bool(tf.config.list_physical_devices('GPU'))


def _auto_order(has_gpu: bool) -> tuple[str, ...]:
    """Engines to try, fastest first.

    On this project's 2-core CPU LiteRT (XNNPACK) beat the frozen TF graph (README benchmarks);
    on a GPU, TF-TRT and TensorFlow use it and LiteRT does not.
    """
    return ('tftrt', 'tf', 'litert') if has_gpu else ('litert', 'tf')


def open_model(model_path: str, engine: str = 'auto', threads: int = 0,
               allow_fallback: bool = False, log=None) -> tuple[Engine, ModelInfo]:
    """Open `model_path` ('' = default model) with `engine`; raises EngineError with the cause.

    `model_path` is a Keras model (file or directory with model.keras + model.json) or an
    optimizer output directory (manifest.json). With `allow_fallback`, an engine that cannot
    run here is replaced by the automatic choice (and `log` is told why).
    """
    if engine not in ENGINES:
        raise EngineError(f'unknown engine {engine!r}; choose one of {ENGINES}')
    path = Path(model_path).expanduser() if model_path else default_model_dir()
    if not path.exists():
        raise EngineError(f'model path does not exist: {path}')
    opener = _open_artefacts if (path / MANIFEST).is_file() else _open_keras
    if engine == 'auto':
        errors = []
        for candidate in _auto_order(_has_gpu()):
            try:
                return opener(path, candidate, threads)
            except EngineError as exc:
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
        raise EngineError(f'no {KERAS_FILE} in {model_dir}')
    if engine == 'tftrt':
        raise EngineError('tftrt needs engines converted by the optimizer on the target GPU: '
                          'run optimizer_node and point model_path at its output directory')
    info = read_model_info(model_dir)
    from jetson_seg.optimize.freeze import load_keras

    try:
        keras_model = load_keras(keras_file)
    except Exception as exc:  # Keras raises many types for a bad file; report them all alike
        raise EngineError(f'cannot load Keras model {keras_file}: {exc}') from exc
    shape = tuple(keras_model.input_shape[1:3])
    classes = int(keras_model.output_shape[-1])
    if shape != info.input_hw or classes != len(info.class_names):
        raise EngineError(f'{keras_file} does not match {model_dir / METADATA_FILE}: input '
                          f'{shape} vs {info.input_hw}, classes {classes} '
                          f'vs {len(info.class_names)}')
    if engine == 'litert':
        from jetson_seg.optimize.convert_litert import convert_to_litert
        from jetson_seg.engines.litert import LiteRtEngine
        return LiteRtEngine(convert_to_litert(keras_model, 'FP32'), classes, threads), info
    from jetson_seg.engines.tf_graph import FrozenGraphEngine
    from jetson_seg.optimize.freeze import freeze_keras_model

    frozen = freeze_keras_model(keras_model, for_cpu=not _has_gpu())  # CPU fusions pin to CPU
    return FrozenGraphEngine(frozen.graph_def, frozen.input_name, frozen.output_name,
                             frozen.input_hw, frozen.num_classes, threads), info


def _open_artefacts(path: Path, engine: str, threads: int) -> tuple[Engine, ModelInfo]:
    """An optimizer output directory: files are checked against the manifest before use."""
    from jetson_seg.optimize.artefacts import read_manifest, verified_file

    manifest = read_manifest(path)
    model = manifest['model']
    info = ModelInfo(path, tuple(model['class_names']),
                     tuple(tuple(c) for c in model['class_colors']),
                     (int(model['input']['height']), int(model['input']['width'])))
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
