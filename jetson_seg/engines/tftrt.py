"""Engine over a TF-TRT SavedModel whose TensorRT engines were built on the target GPU.

TensorRT engines are specific to the GPU, TensorRT version and precision they were built with,
so the manifest is compared with this machine before anything is loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.errors import EngineError
from jetson_seg.engines.gpu import gpu_and_tensorrt


def check_runnable_here(path: Path, target: dict) -> None:
    """Refuse a manifest's tftrt target that cannot run on this machine, with the reason.

    Artefacts converted with build_engines false are accepted: TensorRT builds the engines on
    the first frames (slow start, same result).
    """
    if not target.get('loadable'):  # a CPU preview: segments marked, no engines inside
        raise EngineError(f'tftrt artefact in {path} holds no TensorRT engines '
                          f'({target.get("reason", "not built")}); run the optimizer on the '
                          f'target Jetson/GPU')
    here = gpu_and_tensorrt()
    if here is None:
        raise EngineError('this machine has no GPU with TensorRT; use engine tf or litert')
    built = (target.get('gpu_name'), target.get('tensorrt'))
    if built != here:
        raise EngineError(f'tftrt engines in {path} were built for GPU {built[0]} with '
                          f'TensorRT {built[1]}, this machine has {here[0]} with TensorRT '
                          f'{here[1]}; rebuild them here with the optimizer')


class TfTrtEngine(Engine):
    """Calls the SavedModel's serving signature; TensorFlow places it on the GPU."""

    name = 'tftrt'

    def __init__(self, saved_model_dir: Path, input_hw: tuple[int, int],
                 output_channels: int, output_name: str | None = None) -> None:
        import tensorflow as tf

        self._model = tf.saved_model.load(str(saved_model_dir))
        signatures = self._model.signatures
        self._fn = signatures['serving_default'] if 'serving_default' in signatures else \
            next(iter(signatures.values()))
        self._output_name = output_name
        self._tf = tf
        (spec,) = self._fn.structured_input_signature[1].values()
        super().__init__(input_hw, output_channels, spec.dtype.name)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._fn(self._tf.constant(batch))
        name = self._output_name or next(iter(outputs))
        return outputs[name].numpy()

    def close(self) -> None:
        self._fn = self._model = None
