"""The one interface every inference runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

#: Values of the node's `engine` parameter; auto = the fastest that can run here.
ENGINES = ('auto', 'tf', 'tftrt', 'litert', 'onnxruntime')


class Engine(ABC):
    """Runs the network: input batch (N, H, W, 3) -> its raw output (N, H, W, C) or (N, H, W).

    The input is uint8 pixels or float32 normalised values, as `input_dtype` says; what the
    output means (probabilities, logits, sigmoid scores, class ids) is the model description's
    business (model_info.OutputSpec), not the engine's.
    """

    #: Short name reported in diagnostics and benchmarks, e.g. 'tf', 'litert'.
    name: str = 'engine'
    #: Numeric precision of what runs: 'fp32', 'fp16' or 'int8' (set by whoever opened it).
    precision: str = 'fp32'

    @property
    def label(self) -> str:
        """What diagnostics and logs name: engine and precision, e.g. 'litert/int8'."""
        return f'{self.name}/{self.precision}'

    def __init__(self, input_hw: tuple[int, int], output_channels: int,
                 input_dtype: str = 'uint8') -> None:
        self.input_hw = input_hw
        self.output_channels = output_channels
        self.input_dtype = input_dtype

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Raw output for a contiguous batch of network-sized images."""

    def close(self) -> None:
        """Release runtime resources (sessions, interpreters); idempotent."""
