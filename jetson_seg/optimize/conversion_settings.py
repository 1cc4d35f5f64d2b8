"""The optimizer-wide conversion settings, read by every converter.

They come from the optimizer node's precision and TensorRT parameters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConversionSettings:
    """How every target is converted.

    The precision applies to LiteRT, ONNX, TF-TRT and TensorRT; the other knobs are TensorRT's,
    named as TrtGraphConverterV2 and the origin write-up name them.
    """

    precision_mode: str = 'FP16'
    max_workspace_size_bytes: int = 1 << 30
    minimum_segment_size: int = 3
    max_batch_size: int = 1
    is_dynamic_op: bool = True
    maximum_cached_engines: int = 1
    deny_op_types: tuple[str, ...] = ()
    use_calibration: bool = False
