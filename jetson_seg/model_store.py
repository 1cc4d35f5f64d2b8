"""Find a model on disk, read its metadata, and open it with the requested engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jetson_seg.engines.base import Engine, EngineError

ENGINE_CHOICES = ('auto', 'tf', 'tftrt', 'litert')
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


def open_model(model_path: str, engine: str = 'auto', threads: int = 0
               ) -> tuple[Engine, ModelInfo]:
    """Open `model_path` ('' = default model) with `engine`; raises EngineError with the cause."""
    if engine not in ENGINE_CHOICES:
        raise EngineError(f'unknown engine {engine!r}; choose one of {ENGINE_CHOICES}')
    path = Path(model_path).expanduser() if model_path else default_model_dir()
    model_dir = path.parent if path.is_file() else path
    keras_file = path if path.is_file() else path / KERAS_FILE
    if not path.exists():
        raise EngineError(f'model path does not exist: {path}')
    if not keras_file.is_file():
        raise EngineError(f'no {KERAS_FILE} in {model_dir}')
    info = read_model_info(model_dir)
    if engine not in ('auto', 'tf'):
        raise EngineError(f'engine {engine!r} needs a converted model: run the optimizer and '
                          f'point model_path at its output directory')
    from jetson_seg.engines.tf_graph import FrozenGraphEngine
    from jetson_seg.freeze import freeze_keras_model, load_keras

    try:
        keras_model = load_keras(keras_file)
    except Exception as exc:  # Keras raises many types for a bad file; report them all alike
        raise EngineError(f'cannot load Keras model {keras_file}: {exc}') from exc
    frozen = freeze_keras_model(keras_model)
    if frozen.input_hw != info.input_hw or frozen.num_classes != len(info.class_names):
        raise EngineError(f'{keras_file} does not match {model_dir / METADATA_FILE}: input '
                          f'{frozen.input_hw} vs {info.input_hw}, classes {frozen.num_classes} '
                          f'vs {len(info.class_names)}')
    return FrozenGraphEngine(frozen.graph_def, frozen.input_name, frozen.output_name,
                             frozen.input_hw, frozen.num_classes, threads), info
