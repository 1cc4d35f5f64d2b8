"""Engine over a LiteRT (TensorFlow Lite) model, run by XNNPACK with a set thread count.

Imports only the LiteRT runtime, never TensorFlow: serving a `.tflite` stays small and quick to
start, which matters on a Jetson where CPU and GPU share memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.errors import EngineError, ModelError


class LiteRtEngine(Engine):
    """One interpreter per batch size seen, so several cameras never reallocate tensors.

    A node serving N cameras infers 1..N frames at a time, as many as are pending. Resizing one
    interpreter's tensors on every change of that count costs an allocation each time; a
    zero-padded fixed batch would waste inference on empty slots. Interpreters are small (the
    model plus its arena), so one per count is kept.

    Quantized outputs are dequantized with the model's own scale and zero point, so callers
    always get float32 (or the model's integer ids for an argmax head).
    """

    name = 'litert'

    def __init__(self, model: Path | bytes, threads: int = 0,
                 input_hw: tuple[int, int] | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - the venv pins ai-edge-litert
            raise EngineError('LiteRT runtime (ai-edge-litert) is not installed') from exc
        where = 'in memory' if isinstance(model, bytes) else str(model)
        source = {'model_content': model} if isinstance(model, bytes) else \
            {'model_path': str(model)}
        self._new_interpreter = lambda: Interpreter(
            **source, num_threads=threads if threads > 0 else None)
        try:
            self._interp = self._new_interpreter()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f'cannot load LiteRT model {where}: {exc}') from exc
        if len(self._interp.get_input_details()) != 1:
            raise ModelError(f'LiteRT model {where} has several inputs; one image input needed')
        self._input = self._interp.get_input_details()[0]
        self._output = self._interp.get_output_details()[0]
        shape = [int(v) for v in self._input['shape_signature']]
        if len(shape) != 4 or shape[-1] != 3:
            raise ModelError(f'LiteRT model {where} input has shape {shape}; expected NHWC with 3 '
                             f'channels (an NCHW model must be converted NHWC)')
        height, width = shape[1], shape[2]
        if height <= 0 or width <= 0:  # dynamic: the description gives the size
            if input_hw is None:
                raise ModelError(f'LiteRT model {where} has a dynamic input size; give '
                                 f'input.height and input.width in model.json')
            height, width = input_hw
        out_shape = [int(v) for v in self._output['shape']]
        super().__init__((height, width), out_shape[-1] if len(out_shape) == 4 else 1,
                         np.dtype(self._input['dtype']).name)
        scale, zero = self._output.get('quantization', (0.0, 0))
        self._dequantize = (float(scale), int(zero)) if scale else None
        self._by_batch: dict[int, object] = {}
        self._interpreter(1)

    @property
    def batch_sizes(self) -> list[int]:
        """Batch sizes with an interpreter allocated (for diagnostics and tests)."""
        return sorted(self._by_batch)

    def _interpreter(self, batch: int):
        interp = self._by_batch.get(batch)
        if interp is None:
            interp = self._interp if not self._by_batch else self._new_interpreter()
            height, width = self.input_hw
            interp.resize_tensor_input(self._input['index'], [batch, height, width, 3])
            interp.allocate_tensors()
            self._by_batch[batch] = interp
        return interp

    def infer(self, batch: np.ndarray) -> np.ndarray:
        interp = self._interpreter(batch.shape[0])
        interp.set_tensor(self._input['index'], batch)
        interp.invoke()
        out = interp.get_tensor(self._output['index'])
        if self._dequantize is not None and out.dtype != np.float32:
            scale, zero = self._dequantize
            return (out.astype(np.float32) - zero) * scale
        return out

    def close(self) -> None:
        self._interp = None
        self._by_batch = {}
