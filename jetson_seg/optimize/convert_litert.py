"""Keras model or SavedModel -> LiteRT flatbuffers (float32, float16 weights, int8 calibrated)."""

from __future__ import annotations

import contextlib
import io
from typing import Callable, Iterable

import numpy as np

from jetson_seg.errors import ConfigurationError

PRECISIONS = ('FP32', 'FP16', 'INT8')


def _converter(model):
    """A TFLiteConverter for a Keras model or a frozen graph (optimize.freeze.FrozenModel).

    Keras models convert with from_keras_model, the path that keeps the weights (a Keras 3
    model saved with tf.saved_model.save converted weightless). Other models convert from
    their frozen graph: from_saved_model aborted the whole process (an LLVM error on a
    ReadVariableOp) on a plain two-signature SavedModel, and a frozen graph has no variables.
    """
    import tensorflow as tf

    if not hasattr(model, 'graph_def'):
        return tf.lite.TFLiteConverter.from_keras_model(model)

    def imported():
        tf.graph_util.import_graph_def(model.graph_def, name='')

    wrapped = tf.compat.v1.wrap_function(imported, [])
    function = wrapped.prune(wrapped.graph.get_tensor_by_name(model.input_name),
                             wrapped.graph.get_tensor_by_name(model.output_name))
    return tf.lite.TFLiteConverter.from_concrete_functions([function])


def convert_to_litert(model, precision: str,
                      calibration: Callable[[], Iterable[np.ndarray]] | None = None) -> bytes:
    """Convert a Keras model or a frozen graph to LiteRT at `precision`.

    INT8 quantizes weights and activations with `calibration` (frames as the model takes
    them); input and output types stay, so the engine contract does not change.
    """
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ConfigurationError(f'LiteRT precision must be one of {PRECISIONS}, got {precision}')
    converter = _converter(model)
    if precision == 'FP16':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == 'INT8':
        if calibration is None:
            raise ConfigurationError('INT8 needs calibration frames')
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            for frame in calibration():
                yield [frame[None]]
        converter.representative_dataset = representative
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the whole export signature
        return converter.convert()
