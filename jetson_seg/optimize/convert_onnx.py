"""Frozen graph or LiteRT model -> ONNX (tf2onnx), simplified with onnxslim.

The first half of the route to TensorRT on current JetPack: ONNX Runtime (TensorRT, CUDA or CPU
provider) or TensorRT's own ONNX parser take the file. The frozen graph handed over is the
TF-TRT one (BatchNorm folded, no CPU-only fused kernels, which tf2onnx would have to unpick).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from jetson_seg.errors import TargetUnavailable

#: ONNX opset written. 17 is the newest every target parses: TensorRT 8.5 (JetPack 5.1), 8.6
#: (JetPack 6.0) and 10.x (JetPack 6.1+), and ONNX Runtime 1.14 onwards; its ops cover the
#: network (LayerNormalization-era ops are not needed).
OPSET = 17
#: metadata_props key of the ONNX file that carries the model description (model.json keys).
DESCRIPTION_KEY = 'jetson_seg.model'


@dataclass
class OnnxModel:
    """The converted model (onnx.ModelProto), its tensor names and node counts per step."""

    proto: object
    converter: str
    steps: dict[str, int] = field(default_factory=dict)

    @property
    def input_name(self) -> str:
        """The image input the engine feeds."""
        return self.proto.graph.input[0].name

    @property
    def output_name(self) -> str:
        """The network output the engine fetches."""
        return self.proto.graph.output[0].name


def _quiet():
    """tf2onnx logs every rewrite at INFO and prints TensorFlow's deprecation notes."""
    logging.getLogger('tf2onnx').setLevel(logging.WARNING)
    return contextlib.redirect_stdout(io.StringIO())


def from_frozen(frozen) -> OnnxModel:
    """Convert an optimize.freeze.FrozenModel (its input and output tensors only)."""
    import tf2onnx

    with _quiet():
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph_def, input_names=[frozen.input_name],
            output_names=[frozen.output_name], opset=OPSET)
    return finish(proto, f'tf2onnx {tf2onnx.__version__} (frozen graph)',
                  'replace them in the model, or serve it with the tf or litert target')


def from_tflite(path: Path) -> OnnxModel:
    """Convert a .tflite with tf2onnx's LiteRT path; left out where that path fails."""
    import tf2onnx

    try:
        with _quiet():
            proto, _ = tf2onnx.convert.from_tflite(str(path), opset=OPSET)
    except Exception as exc:  # tf2onnx raises many types for what it cannot read
        raise TargetUnavailable(f"{path}: tf2onnx's LiteRT path failed ({exc}); convert the "
                                f'float model it came from instead') from exc
    return finish(proto, f'tf2onnx {tf2onnx.__version__} (LiteRT)',
                  'convert the float model it came from instead')


def finish(proto, converter: str, hint: str) -> OnnxModel:
    """Refuse ops ONNX lacks, name the batch dimension, simplify with onnxslim (checked).

    tf2onnx leaves an op it cannot map in the graph under its own name (MediaPipe's LiteRT
    `Convolution2DTransposeBias`, for one), which would only fail when a runtime loads it.
    """
    import onnx
    import onnxslim

    unknown = sorted({node.op_type for node in proto.graph.node
                      if not onnx.defs.has(node.op_type, node.domain)})
    if unknown:
        raise TargetUnavailable(f'{converter} leaves op(s) {unknown} that ONNX does not define; '
                                f'{hint}')
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:  # an output of unknown shape has none
            dims[0].dim_param = 'batch'
    model = OnnxModel(proto, converter, {'converted': len(proto.graph.node)})
    slim = onnxslim.slim(proto)
    onnx.checker.check_model(slim)
    model.proto = slim
    model.converter += f', onnxslim {onnxslim.__version__}'
    model.steps['simplified (onnxslim)'] = len(slim.graph.node)
    return model


def serialize(model: OnnxModel, description: dict) -> bytes:
    """The ONNX file, carrying the model description so it stays usable on its own."""
    del model.proto.metadata_props[:]
    entry = model.proto.metadata_props.add()
    entry.key, entry.value = DESCRIPTION_KEY, json.dumps(description, sort_keys=True)
    return model.proto.SerializeToString()


def quantize_int8(fp32: Path, out: Path, calibration: Iterable[dict[str, np.ndarray]]) -> bytes:
    """INT8 by ONNX Runtime's static quantization (QDQ): what its CPU provider and TensorRT run.

    `calibration` yields the model's own input feeds (its layout and dtype). Weights are
    quantized per channel (symmetric int8), activations per tensor (int8, calibrated by the
    min-max of the frames). QDQ keeps the float graph readable: TensorRT takes it as explicit
    quantization, ONNX Runtime's CPU provider fuses it into integer kernels.
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    try:
        quantize_static(str(fp32), str(out), Frames(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)
    except Exception as exc:  # the quantizer raises many types for graphs it cannot take
        raise TargetUnavailable(f'ONNX Runtime could not quantize {fp32} to INT8 ({exc!r}); '
                                f'serve its FP32 file') from exc
    return out.read_bytes()
