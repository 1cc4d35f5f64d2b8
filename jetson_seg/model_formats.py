"""The model formats this package serves, defined once: files, engines, what loading needs.

Everything that asks "which format is this?" reads FORMATS: locate_model (which file in a
folder), the node (which engines serve a source at start-up), the optimizer (optimize.sources
has one class per format, keyed by these names). A new format is one row here and one class there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFormat:
    """One model format: how it is found on disk and what serves it without the optimizer."""

    name: str
    #: The model's name inside a model folder (a SavedModel: the file that marks the folder).
    file_name: str
    #: Suffixes of a model file named directly (model_path:=.../net.onnx).
    suffixes: tuple[str, ...]
    #: Engines that serve it at start-up (converted in memory where needed), any order.
    engines: tuple[str, ...]
    #: Loading or converting it needs TensorFlow (Keras, SavedModel).
    needs_tensorflow: bool
    #: The model is the whole folder (a SavedModel with variables/ and assets/).
    is_folder: bool = False


FORMATS = (
    ModelFormat('keras', 'model.keras', ('.keras',), ('litert', 'tf'), True),
    ModelFormat('h5', 'model.h5', ('.h5', '.hdf5'), ('litert', 'tf'), True),
    ModelFormat('saved_model', 'saved_model.pb', (), ('litert', 'tf'), True, is_folder=True),
    ModelFormat('tflite', 'model.tflite', ('.tflite',), ('litert',), False),
    ModelFormat('onnx', 'model.onnx', ('.onnx',), ('onnxruntime',), False),
)
BY_NAME = {fmt.name: fmt for fmt in FORMATS}


def model_format(name: str) -> ModelFormat:
    """The format called `name` (a KeyError names the formats there are)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f'no model format {name!r}; formats: {", ".join(BY_NAME)}') from None


def by_suffix(suffix: str) -> ModelFormat | None:
    """The format of a model file with this suffix, or None."""
    return next((fmt for fmt in FORMATS if suffix.lower() in fmt.suffixes), None)


def describe_files() -> str:
    """'.keras, .h5, .hdf5, .tflite, .onnx or a SavedModel folder' for messages."""
    suffixes = [s for fmt in FORMATS for s in fmt.suffixes]
    return ', '.join(suffixes) + ' or a SavedModel folder'
