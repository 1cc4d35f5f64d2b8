"""ONNX -> serialized TensorRT engine with TensorRT's Python API, on the GPU that will run it.

Same knobs as the TF-TRT target (workspace, precision incl. INT8 calibrated on the same frames,
batch sizes), for JetPack releases without TF-TRT. Written to TensorRT 8.6/10's documented API
(OnnxParser, builder config memory pools, optimization profiles, named I/O tensors) with
cuda-python for device buffers. Not run by this project: its machines have no GPU or TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from jetson_seg.engines.tensorrt import cuda_check, cuda_runtime
from jetson_seg.errors import ModelError
from jetson_seg.optimize.conversion_settings import ConversionSettings


@dataclass
class BuiltEngine:
    """A serialized engine and what it is bound to."""

    data: bytes
    gpu_name: str
    tensorrt: str


def unavailable_reason() -> str:
    """Why no engine can be built here ('' when TensorRT, cuda-python and a GPU are present)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT's Python API (the tensorrt module) is not installed"
    try:
        cudart = cuda_runtime()
    except ImportError:
        return 'cuda-python (for device buffers) is not installed'
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count == 0:
        return f'no CUDA GPU ({err})'
    return ''


def _calibrator(frames: Callable[[], Iterable[np.ndarray]], cache: Path):
    """An entropy calibrator over the optimizer's calibration frames (one frame per batch)."""
    import tensorrt as trt

    cudart = cuda_runtime()

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self._frames = iter(frames())
            self._device = None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            frame = next(self._frames, None)
            if frame is None:
                return None
            host = np.ascontiguousarray(frame[None])
            if self._device is None:
                self._device = cuda_check(cudart.cudaMalloc(host.nbytes))
            cuda_check(cudart.cudaMemcpy(self._device, host.ctypes.data, host.nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            return [int(self._device)]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data) -> None:
            cache.write_bytes(bytes(data))

    return Calibrator()


def build_engine(onnx_file: Path, input_hw: tuple[int, int], settings: ConversionSettings,
                 batch_sizes: tuple[int, ...],
                 calibration: Callable[[], Iterable[np.ndarray]]) -> BuiltEngine:
    """Parse `onnx_file` and build an engine for batches 1..max at `settings.precision_mode`."""
    import tensorrt as trt

    from jetson_seg.engines.gpu import nvidia_gpu_and_tensorrt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, 'EXPLICIT_BATCH'):  # 8.x; always on in 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_file.read_bytes()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f'TensorRT cannot parse {onnx_file}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
                                 settings.max_workspace_size_bytes)
    if settings.precision_mode in ('FP16', 'INT8'):
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 layers fall back to FP16, not FP32
    height, width = input_hw
    largest = max(settings.max_batch_size, *batch_sizes)
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, (1, height, width, 3),
                      (batch_sizes[0], height, width, 3), (largest, height, width, 3))
    config.add_optimization_profile(profile)
    if settings.precision_mode == 'INT8':
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(calibration, onnx_file.with_suffix('.calib'))
        config.set_calibration_profile(profile)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise ModelError(f'TensorRT could not build an engine from {onnx_file} (see its log)')
    gpu, version = nvidia_gpu_and_tensorrt()
    return BuiltEngine(bytes(data), gpu, version)
