"""Keras model -> LiteRT flatbuffers (float32, float16 weights, or int8 with calibration)."""

from __future__ import annotations

import contextlib
import io
from typing import Callable, Iterable

import numpy as np

from jetson_seg.errors import ConfigurationError

PRECISIONS = ('FP32', 'FP16', 'INT8')


def convert_to_litert(model, precision: str,
                      calibration: Callable[[], Iterable[np.ndarray]] | None = None) -> bytes:
    """Convert with TFLiteConverter.from_keras_model (the path that keeps the weights).

    INT8 quantizes weights and activations with `calibration` (uint8 network-sized frames);
    inputs stay uint8 and outputs float32 so the engine contract does not change.
    """
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ConfigurationError(f'LiteRT precision must be one of {PRECISIONS}, got {precision}')
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == 'FP16':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == 'INT8':
        if calibration is None:
            raise ValueError('INT8 needs calibration frames')
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            for frame in calibration():
                yield [frame[None].astype(np.uint8)]
        converter.representative_dataset = representative
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the whole export signature
        return converter.convert()
