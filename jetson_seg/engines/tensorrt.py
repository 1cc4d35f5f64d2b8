"""A serialized TensorRT engine file, run on batches from host memory.

Written to TensorRT 8.6/10's documented API (named I/O tensors, execute_async_v3) with
cuda-python for device buffers. The optimizer's tensorrt target checks what it built with it.
Not run by this project: its machines have no GPU or TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jetson_seg.errors import ModelError


def cuda_runtime():
    """cuda-python's runtime: cuda.bindings.runtime, or cuda.cudart before 12.6 (gone in 13)."""
    try:
        from cuda.bindings import runtime
        return runtime
    except ImportError:
        from cuda import cudart
        return cudart


def cuda_check(result):
    """Unwrap a cuda-python call's (error, value...) result, raising on an error."""
    if result[0] != cuda_runtime().cudaError_t.cudaSuccess:
        raise RuntimeError(f'CUDA call failed: {result[0]}')
    return result[1] if len(result) > 1 else None


class TensorRtPlanRunner:
    """Runs a serialized engine on batches from host memory (the optimizer's check)."""

    def __init__(self, path: Path) -> None:
        import tensorrt as trt

        self._trt, self._cudart = trt, cuda_runtime()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise ModelError(f'TensorRT cannot load {path}: built for another GPU or version')
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self._input = next(n for n in names if self._engine.get_tensor_mode(n) == mode)
        self._output = next(n for n in names if self._engine.get_tensor_mode(n) != mode)
        self._stream = cuda_check(self._cudart.cudaStreamCreate())

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Copy in, execute, copy out."""
        trt, cudart = self._trt, self._cudart
        batch = np.ascontiguousarray(batch)
        self._context.set_input_shape(self._input, batch.shape)
        out = np.empty(tuple(self._context.get_tensor_shape(self._output)),
                       trt.nptype(self._engine.get_tensor_dtype(self._output)))
        device_in = cuda_check(cudart.cudaMalloc(batch.nbytes))
        device_out = cuda_check(cudart.cudaMalloc(out.nbytes))
        try:
            cuda_check(cudart.cudaMemcpy(device_in, batch.ctypes.data, batch.nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            self._context.set_tensor_address(self._input, int(device_in))
            self._context.set_tensor_address(self._output, int(device_out))
            if not self._context.execute_async_v3(self._stream):
                raise ModelError('TensorRT execution failed (see its log)')
            cuda_check(cudart.cudaStreamSynchronize(self._stream))
            cuda_check(cudart.cudaMemcpy(out.ctypes.data, device_out, out.nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost))
        finally:
            cudart.cudaFree(device_in)
            cudart.cudaFree(device_out)
        return out

    def close(self) -> None:
        """Release the stream and the engine."""
        if self._stream is not None:
            self._cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        self._context = self._engine = self._runtime = None
