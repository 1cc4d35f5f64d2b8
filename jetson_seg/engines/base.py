"""The one interface every inference runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

#: Values of the node's `engine` parameter; auto = the fastest that can run here.
ENGINES = ('auto', 'tf', 'tftrt', 'litert')


class Engine(ABC):
    """Runs the network: uint8 RGB batch (N, H, W, 3) -> float32 probabilities (N, H, W, C)."""

    #: Short name reported in diagnostics and benchmarks, e.g. 'tf', 'litert'.
    name: str = 'engine'

    def __init__(self, input_hw: tuple[int, int], num_classes: int) -> None:
        self.input_hw = input_hw
        self.num_classes = num_classes

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a contiguous uint8 batch of network-sized RGB images."""

    def close(self) -> None:
        """Release runtime resources (sessions, interpreters); idempotent."""
