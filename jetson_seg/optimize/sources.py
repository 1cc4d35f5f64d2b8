"""A user's trained model, opened for the optimizer in whatever format it came.

The optimizer asks a source for five things: reference outputs (the model run by its own
runtime, what every artefact is checked against), a frozen graph, a LiteRT flatbuffer, an ONNX
model and a SavedModel for TF-TRT. A format that cannot give one says why (a .tflite holds no
TensorFlow graph to freeze), and the optimizer leaves that target out.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from jetson_seg.errors import ModelError
from jetson_seg.model_info import ModelInfo, load_keras, locate_model, read_model_info
from jetson_seg.model_trust import check_model_file
from jetson_seg.optimize.freeze import FrozenModel, freeze_keras_model, freeze_saved_model


class TargetUnavailable(ModelError):
    """This source cannot be turned into the asked target (the message says why)."""


@dataclass
class ModelSource:
    """One model file (or SavedModel folder) with its description, checked against each other."""

    path: Path
    fmt: str
    info: ModelInfo
    trust: bool = False
    keras_model: object = None
    signature: str | None = None  # of a SavedModel
    _reference_fn: Callable[[np.ndarray], np.ndarray] | None = None
    _frozen: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, trust: bool = False) -> 'ModelSource':
        """Load `path` (a model folder or a model file in one) and check its model.json."""
        model_dir, model_file, fmt = locate_model(path)
        info = read_model_info(model_dir)
        check_model_file(model_file, fmt, trust)  # before anything deserializes it
        source = cls(model_file, fmt, info, trust)
        if fmt in ('keras', 'h5'):
            try:
                model = load_keras(model_file, trust)
            except ModelError:
                raise
            except Exception as exc:  # Keras raises many types for a bad file
                raise ModelError(f'cannot load Keras model {model_file}: {exc}') from exc
            source.keras_model = model
            source._reference_fn = lambda batch: np.asarray(model(batch, training=False))
            shape = model.output_shape
            size = tuple(model.input_shape[1:3])
            if None in size and info.input.height is not None:  # free size: model.json's
                size = info.input_hw
            network = (size, shape[-1] if len(shape) == 4 else 1, model.inputs[0].dtype)
        elif fmt == 'saved_model':
            frozen = source.freeze(for_cpu=True)
            from jetson_seg.engines.tf_graph import FrozenGraphEngine
            engine = FrozenGraphEngine.from_frozen(frozen, threads=1)
            source.signature = frozen.signature
            source._reference_fn = engine.infer
            network = (frozen.input_hw, frozen.output_channels, engine.input_dtype)
        else:
            from jetson_seg.engines.litert import LiteRtEngine
            size = None if info.input.height is None else info.input_hw
            engine = LiteRtEngine(model_file, threads=1, input_hw=size)
            source._reference_fn = engine.infer
            network = (engine.input_hw, engine.output_channels, engine.input_dtype)
        source.info = info.check_network(*network, str(model_file))
        return source

    def reference(self, batch: np.ndarray) -> np.ndarray:
        """The model's own output for `batch`, one frame at a time (as the checks run)."""
        return np.concatenate([self._reference_fn(batch[i:i + 1]) for i in range(len(batch))])

    def freeze(self, for_cpu: bool) -> FrozenModel:
        """The lean frozen graph (cached per for_cpu); a .tflite has none."""
        if for_cpu not in self._frozen:
            if self.fmt == 'tflite':
                raise TargetUnavailable(f'{self.path} is a LiteRT model: it holds no TensorFlow '
                                        f'graph, so only the litert target can be made')
            if self.keras_model is not None:
                self._frozen[for_cpu] = freeze_keras_model(self.keras_model, for_cpu)
            else:
                self._frozen[for_cpu] = freeze_saved_model(
                    self.path, self.info.input.name, self.info.output.name,
                    None if self.info.input.height is None else self.info.input_hw,
                    for_cpu)
        return self._frozen[for_cpu]

    def to_litert(self, precision: str, calibration: Callable[[], Iterable[np.ndarray]],
                  float_ops: int = 0, full_int8: bytes | None = None) -> bytes:
        """LiteRT flatbuffer at `precision` (INT8: the first `float_ops` operations float).

        `full_int8`: this source's plain INT8 file, if made already (see convert_to_litert).
        A .tflite source is taken as it is (FP32 only).
        """
        if self.fmt == 'tflite':
            if precision != 'FP32':
                raise TargetUnavailable(f'{self.path} is already a LiteRT model; quantize the '
                                        f'float model it came from to get {precision}')
            return self.path.read_bytes()
        from jetson_seg.optimize.convert_litert import convert_to_litert
        if self.keras_model is not None:
            return convert_to_litert(self.keras_model, precision, calibration, float_ops,
                                     full_int8)
        return convert_to_litert(self.freeze(for_cpu=False), precision, calibration, float_ops,
                                 full_int8)

    def to_onnx(self):
        """The model as ONNX (convert_onnx.OnnxModel), from the frozen TF-TRT graph.

        A .tflite goes through tf2onnx's LiteRT path, refused with the ops it cannot map.
        """
        from jetson_seg.optimize import convert_onnx
        if self.fmt == 'tflite':
            return convert_onnx.from_tflite(self.path)
        return convert_onnx.from_frozen(self.freeze(for_cpu=False))

    @contextlib.contextmanager
    def serving_saved_model(self) -> Iterator[tuple[Path, str]]:
        """(SavedModel folder, signature) for TF-TRT's converter, which takes SavedModels."""
        if self.fmt == 'tflite':
            raise TargetUnavailable(f'{self.path} is a LiteRT model: TF-TRT needs a SavedModel, '
                                    f'.keras or .h5')
        if self.keras_model is None:
            yield self.path, self.signature
            return
        with tempfile.TemporaryDirectory() as folder:
            self.keras_model.export(folder)  # a Keras 3 serving SavedModel the converter takes
            yield Path(folder), 'serving_default'
