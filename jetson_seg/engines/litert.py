"""Engine over a LiteRT (TensorFlow Lite) model, run by XNNPACK with a set thread count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.errors import EngineError


class LiteRtEngine(Engine):
    """One interpreter per engine; the batch size follows the input (tensors resized on change)."""

    name = 'litert'

    def __init__(self, model: Path | bytes, num_classes: int, threads: int = 0) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - the venv pins ai-edge-litert
            raise EngineError('LiteRT runtime (ai-edge-litert) is not installed') from exc
        try:
            source = {'model_content': model} if isinstance(model, bytes) else \
                {'model_path': str(model)}
            self._interp = Interpreter(**source, num_threads=threads if threads > 0 else None)
        except (ValueError, RuntimeError) as exc:
            where = 'in memory' if isinstance(model, bytes) else str(model)
            raise EngineError(f'cannot load LiteRT model {where}: {exc}') from exc
        self._input = self._interp.get_input_details()[0]
        self._output = self._interp.get_output_details()[0]
        _, height, width, _ = self._input['shape']
        super().__init__((int(height), int(width)), num_classes)
        self._batch = 0
        self._allocate(1)

    def _allocate(self, batch: int) -> None:
        if batch != self._batch:
            height, width = self.input_hw
            self._interp.resize_tensor_input(self._input['index'], [batch, height, width, 3])
            self._interp.allocate_tensors()
            self._batch = batch

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._allocate(batch.shape[0])
        self._interp.set_tensor(self._input['index'], batch)
        self._interp.invoke()
        return self._interp.get_tensor(self._output['index'])

    def close(self) -> None:
        self._interp = None
