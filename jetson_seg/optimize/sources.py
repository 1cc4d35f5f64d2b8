"""A user's trained model, opened in whatever format it came: one class per format.

The node and the optimizer open a model folder the same way (ModelSource.open: locate, check
against the allow-lists, load, check against model.json) and then ask the source for what they
need: an engine that serves it at start-up (the node), reference outputs (the model run by its
own runtime, what every artefact is checked against), a frozen graph, a LiteRT flatbuffer, an
ONNX model or a SavedModel for TF-TRT (the optimizer). A format that cannot give one says why
(TargetUnavailable: a .tflite holds no TensorFlow graph to freeze), and the optimizer leaves that
target out. Which class serves which format is SOURCES, keyed by model_formats' names.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.engines.onnxruntime import PROVIDERS
from jetson_seg.errors import EngineError, ModelError, TargetUnavailable
from jetson_seg.model_formats import model_format
from jetson_seg.model_info import ModelInfo, load_keras, locate_model, read_model_info
from jetson_seg.model_trust import check_model_file
from jetson_seg.optimize.freeze import FrozenModel, freeze_keras_model, freeze_saved_model

#: What a network is, as model.json is checked against it: (input (h, w), output channels,
#: input dtype).
Network = tuple[tuple[int, int], int, str]


class ModelSource:
    """One model file (or SavedModel folder) with its description, checked against each other.

    Subclasses load their format and say what they can become; the defaults here refuse.
    """

    #: Can the optimizer make FP16/INT8 files from it (a .tflite is already converted)?
    quantizable: ClassVar[bool] = True

    def __init__(self, path: Path, fmt: str, info: ModelInfo, trust: bool) -> None:
        self.path, self.fmt, self.info, self.trust = path, fmt, info, trust
        self._frozen: dict[bool, FrozenModel] = {}
        self._engine: Engine | None = None  # the model's own runtime, one thread (network())

    @classmethod
    def load(cls, path: Path, trust: bool = False) -> 'ModelSource':
        """Load `path` (a model folder or a model file in one) with its model.json, unchecked.

        The file passes model_trust's allow-lists before anything deserializes it. The node
        serves from this and checks the engine it opened (one runtime, not two); the optimizer
        needs the reference run as well: open().
        """
        model_dir, model_file, fmt = locate_model(Path(path))
        info = read_model_info(model_dir)
        check_model_file(model_file, fmt, trust)
        return SOURCES[fmt](model_file, fmt, info, trust)

    @classmethod
    def open(cls, path: Path, trust: bool = False) -> 'ModelSource':
        """load() and check model.json against the network run by its own runtime."""
        source = cls.load(path, trust)
        source.info = source.info.check_network(*source.network(), str(source.path))
        return source

    @property
    def engines(self) -> tuple[str, ...]:
        """Engines that serve this source at start-up (model_formats)."""
        return model_format(self.fmt).engines

    @property
    def size(self) -> tuple[int, int] | None:
        """The input size model.json gives, None where it leaves it to the network."""
        spec = self.info.input
        return None if spec.height is None or spec.width is None else (spec.height, spec.width)

    # --- what each format implements ------------------------------------------------------------
    def network(self) -> Network:
        raise NotImplementedError

    def engine(self, name: str, threads: int, providers: tuple[str, ...] = PROVIDERS,
               precision: str = 'auto', log=None) -> Engine:
        """An engine `name` serving this model as it is (converted in memory where needed)."""
        raise EngineError(self.not_served(name))

    def freeze(self, for_cpu: bool) -> FrozenModel:
        """The lean frozen graph (cached per for_cpu)."""
        raise TargetUnavailable(f'{self.path} is a {self.fmt} model: it holds no TensorFlow '
                                f'graph to freeze')

    def to_litert(self, precision: str, calibration: Callable[[], Iterable[np.ndarray]],
                  float_ops: int = 0, full_int8: bytes | None = None) -> bytes:
        """LiteRT flatbuffer at `precision` (INT8: the first `float_ops` operations float).

        `full_int8`: this source's plain INT8 file, if made already (see convert_to_litert).
        """
        from jetson_seg.optimize.convert_litert import convert_to_litert
        return convert_to_litert(self._litert_input(), precision, calibration, float_ops,
                                 full_int8)

    def _litert_input(self):
        """What convert_to_litert takes for this source (a Keras model or a frozen graph)."""
        return self.freeze(for_cpu=False)

    def to_onnx(self):
        """The model as ONNX (convert_onnx.OnnxModel), from the frozen TF-TRT graph."""
        from jetson_seg.optimize import convert_onnx
        return convert_onnx.from_frozen(self.freeze(for_cpu=False))

    @contextlib.contextmanager
    def serving_saved_model(self) -> Iterator[tuple[Path, str]]:
        """(SavedModel folder, signature) for TF-TRT's converter, which takes SavedModels."""
        raise TargetUnavailable(f'{self.path} is a {self.fmt} model: TF-TRT needs a '
                                f'SavedModel, .keras or .h5')
        yield  # pragma: no cover - a generator for contextmanager

    # --- shared ---------------------------------------------------------------------------------
    def reference(self, batch: np.ndarray) -> np.ndarray:
        """The model's own output for `batch`, one frame at a time (as the checks run)."""
        return np.concatenate([self._run_own(batch[i:i + 1]) for i in range(len(batch))])

    def _run_own(self, frame: np.ndarray) -> np.ndarray:
        """One frame through the model's own runtime (the engine network() opened)."""
        return self._engine.infer(frame)

    def not_served(self, engine: str) -> str:
        """Why `engine` does not serve this source as it is, and what to do."""
        made = {'tftrt': 'engines converted by the optimizer on the target GPU',
                'onnxruntime': "the optimizer's onnx target (targets:=[onnx])"}
        if engine in made:
            return (f'{engine} needs {made[engine]}: run optimizer_node and point model_path '
                    f'at its output directory')
        return f'{self.path} is a {self.fmt} model: it runs with engine ' \
               f'{" or ".join(self.engines)}'

    def _converted_litert(self, threads: int) -> Engine:
        """LiteRT over this model converted in memory at start-up (FP32)."""
        from jetson_seg.engines.litert import LiteRtEngine
        from jetson_seg.optimize.convert_litert import convert_to_litert
        try:
            flatbuffer = convert_to_litert(self._litert_input(), 'FP32')
        except Exception as exc:  # the converter raises many types; auto then tries the next
            raise EngineError(f'LiteRT conversion failed: {exc}') from exc
        return LiteRtEngine(flatbuffer, threads, self.size)

    def _frozen_graph(self, threads: int) -> Engine:
        """TensorFlow over the frozen graph; CPU fusions pin it to the CPU, so only there."""
        from jetson_seg.engines.gpu import tensorflow_gpu
        from jetson_seg.engines.tf_graph import FrozenGraphEngine
        return FrozenGraphEngine.from_frozen(self.freeze(for_cpu=not tensorflow_gpu()), threads)


class TensorFlowSource(ModelSource):
    """A model TensorFlow loads: served at start-up as a frozen graph or converted to LiteRT."""

    def engine(self, name: str, threads: int, providers: tuple[str, ...] = PROVIDERS,
               precision: str = 'auto', log=None) -> Engine:
        if name == 'litert':
            return self._converted_litert(threads)
        if name == 'tf':
            return self._frozen_graph(threads)
        return super().engine(name, threads)


class KerasSource(TensorFlowSource):
    """A .keras or legacy .h5 model, loaded with Keras once (safe mode unless trusted)."""

    def __init__(self, path: Path, fmt: str, info: ModelInfo, trust: bool) -> None:
        super().__init__(path, fmt, info, trust)
        try:
            self.keras_model = load_keras(path, trust)
        except ModelError:
            raise
        except Exception as exc:  # Keras raises many types for a bad file; report them alike
            raise ModelError(f'cannot load Keras model {path}: {exc}') from exc

    def network(self) -> Network:
        model = self.keras_model
        shape = model.output_shape
        size = tuple(model.input_shape[1:3])
        if None in size and self.size is not None:  # a free size: model.json's
            size = self.size
        return size, shape[-1] if len(shape) == 4 else 1, model.inputs[0].dtype

    def _run_own(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self.keras_model(frame, training=False))

    def freeze(self, for_cpu: bool) -> FrozenModel:
        if for_cpu not in self._frozen:
            self._frozen[for_cpu] = freeze_keras_model(self.keras_model, for_cpu)
        return self._frozen[for_cpu]

    def _litert_input(self):
        return self.keras_model

    @contextlib.contextmanager
    def serving_saved_model(self) -> Iterator[tuple[Path, str]]:
        with tempfile.TemporaryDirectory() as folder:
            self.keras_model.export(folder)  # a Keras 3 serving SavedModel the converter takes
            yield Path(folder), 'serving_default'


class SavedModelSource(TensorFlowSource):
    """A TensorFlow SavedModel: one signature frozen into a lean graph (loading runs it)."""

    signature: str | None = None

    def network(self) -> Network:
        from jetson_seg.engines.tf_graph import FrozenGraphEngine

        frozen = self.freeze(for_cpu=True)
        self.signature = frozen.signature
        self._engine = FrozenGraphEngine.from_frozen(frozen, threads=1)
        return frozen.input_hw, frozen.output_channels, self._engine.input_dtype

    def freeze(self, for_cpu: bool) -> FrozenModel:
        if for_cpu not in self._frozen:
            spec = self.info.input
            self._frozen[for_cpu] = freeze_saved_model(self.path, spec.name, self.info.output.name,
                                                       self.size, for_cpu)
        return self._frozen[for_cpu]

    @contextlib.contextmanager
    def serving_saved_model(self) -> Iterator[tuple[Path, str]]:
        yield self.path, self.signature


class LiteRtSource(ModelSource):
    """A .tflite: served as it is by LiteRT; converted already, so never quantized again."""

    quantizable = False

    def network(self) -> Network:
        from jetson_seg.engines.litert import LiteRtEngine

        self._engine = LiteRtEngine(self.path, threads=1, input_hw=self.size)
        return self._engine.input_hw, self._engine.output_channels, self._engine.input_dtype

    def engine(self, name: str, threads: int, providers: tuple[str, ...] = PROVIDERS,
               precision: str = 'auto', log=None) -> Engine:
        from jetson_seg.engines.litert import LiteRtEngine

        if name != 'litert':
            return super().engine(name, threads)
        return LiteRtEngine(self.path, threads, self.size)

    def to_litert(self, precision: str, calibration: Callable[[], Iterable[np.ndarray]],
                  float_ops: int = 0, full_int8: bytes | None = None) -> bytes:
        """The file as it is (FP32 only)."""
        if precision != 'FP32':
            raise TargetUnavailable(f'{self.path} is already a LiteRT model; quantize the float '
                                    f'model it came from to get {precision}')
        return self.path.read_bytes()

    def to_onnx(self):
        """tf2onnx's LiteRT path, refused with the ops it cannot map."""
        from jetson_seg.optimize import convert_onnx
        return convert_onnx.from_tflite(self.path)


class OnnxSource(ModelSource):
    """A .onnx (most PyTorch networks arrive this way): served by ONNX Runtime as it is."""

    def network(self) -> Network:
        from jetson_seg.engines.onnxruntime import CPU_EP

        self._engine = self._onnxruntime(threads=1, providers=(CPU_EP,))
        return self._engine.input_hw, self._engine.output_channels, self._engine.input_dtype

    def _onnxruntime(self, threads: int, providers: tuple[str, ...], precision: str = 'auto',
                     log=None) -> Engine:
        from jetson_seg.engines.onnxruntime import OnnxRuntimeEngine
        spec = self.info.input
        return OnnxRuntimeEngine(self.path, threads, providers, self.size, precision,
                                 self.path.parent, log, layout=spec.layout,
                                 input_name=spec.name, output_name=self.info.output.name)

    def engine(self, name: str, threads: int, providers: tuple[str, ...] = PROVIDERS,
               precision: str = 'auto', log=None) -> Engine:
        if name != 'onnxruntime':
            return super().engine(name, threads)
        return self._onnxruntime(threads, providers, precision, log)

    def to_litert(self, precision: str, calibration: Callable[[], Iterable[np.ndarray]],
                  float_ops: int = 0, full_int8: bytes | None = None) -> bytes:
        raise TargetUnavailable(f'{self.path} is an ONNX model: no well-kept converter turns '
                                f'ONNX into LiteRT reliably; serve the onnx target')

    def to_onnx(self):
        """The model itself, simplified with onnxslim and checked."""
        import onnx

        from jetson_seg.optimize import convert_onnx
        return convert_onnx.finish(onnx.load(str(self.path)), 'the source ONNX file',
                                   'fix the source model')


#: Which class opens which format (model_formats.FORMATS names).
SOURCES: dict[str, type[ModelSource]] = {
    'keras': KerasSource, 'h5': KerasSource, 'saved_model': SavedModelSource,
    'tflite': LiteRtSource, 'onnx': OnnxSource,
}
