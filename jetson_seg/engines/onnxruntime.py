"""Engine over an ONNX model run by ONNX Runtime, with execution providers in preference order.

The ONNX route is what current JetPack releases deploy through (TF-TRT ends with TensorFlow
2.17): ONNX Runtime's TensorRT provider builds TensorRT engines from the ONNX file, its CUDA
provider runs what TensorRT does not take, and its CPU provider runs anywhere. Providers this
build or machine lacks fall away with the reason, so one parameter serves a Jetson and a laptop.
Imports no TensorFlow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.errors import EngineError, ModelError

TENSORRT_EP, CUDA_EP, CPU_EP = ('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                                'CPUExecutionProvider')
#: Default of the node's `onnx_providers`: TensorRT, then CUDA for what it leaves, then CPU.
PROVIDERS = (TENSORRT_EP, CUDA_EP, CPU_EP)
#: Folder, inside the model folder, of the TensorRT provider's engine cache.
TRT_CACHE = 'trt_cache'
_ONNX_TYPES = {'tensor(uint8)': 'uint8', 'tensor(float)': 'float32'}


@dataclass
class ProviderChoice:
    """Providers to ask for, in order, and those that fell away with the reason."""

    used: list[str]
    dropped: dict[str, str] = field(default_factory=dict)


def choose_providers(requested: tuple[str, ...] | list[str],
                     available: list[str]) -> ProviderChoice:
    """Keep the requested providers this ONNX Runtime build has; say why the others fell away."""
    choice = ProviderChoice([])
    for name in dict.fromkeys(requested):
        if name in available:
            choice.used.append(name)
        else:
            hint = ' (install onnxruntime-gpu, or on a Jetson the onnxruntime-gpu wheel built ' \
                   'for its JetPack)' if name in (TENSORRT_EP, CUDA_EP) else ''
            choice.dropped[name] = f'not in this onnxruntime build (it has {available}){hint}'
    if not choice.used:
        raise EngineError(f'none of onnx_providers {list(requested)} is available: '
                          + '; '.join(f'{k}: {v}' for k, v in choice.dropped.items()))
    return choice


def trt_cache_key(gpu: str, tensorrt: str, precision: str) -> str:
    """Cache folder name for engines of one GPU, TensorRT version and precision.

    TensorRT engines run only where they were built (as with TF-TRT): a key per combination
    keeps engines of another board or JetPack from being loaded.
    """
    parts = (gpu, f'trt{tensorrt}', precision)
    return '-'.join(re.sub(r'[^A-Za-z0-9.]+', '_', part).strip('_') for part in parts)


def tensorrt_options(precision: str, cache_dir: Path) -> dict[str, str]:
    """TensorRT provider options: engines and timing cache kept under `cache_dir`, per key."""
    from jetson_seg.engines.gpu import nvidia_gpu_and_tensorrt

    cache = Path(cache_dir) / TRT_CACHE / trt_cache_key(*nvidia_gpu_and_tensorrt(), precision)
    cache.mkdir(parents=True, exist_ok=True)
    return {'trt_engine_cache_enable': 'True', 'trt_engine_cache_path': str(cache),
            'trt_timing_cache_enable': 'True', 'trt_timing_cache_path': str(cache),
            'trt_fp16_enable': str(precision == 'fp16')}


class OnnxRuntimeEngine(Engine):
    """One InferenceSession; `label` names the provider that actually runs the graph.

    `cache_dir` (the model folder) gets the TensorRT provider's engine cache, so engines are
    built on the first start only; `threads` sets the intra-op pool (0 = runtime default);
    precision auto is FP16 where the TensorRT provider runs, FP32 elsewhere.
    """

    name = 'onnxruntime'

    def __init__(self, model: Path, threads: int = 0, providers: tuple[str, ...] = PROVIDERS,
                 input_hw: tuple[int, int] | None = None, precision: str = 'auto',
                 cache_dir: Path | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - the venv pins onnxruntime
            raise EngineError('ONNX Runtime (onnxruntime) is not installed') from exc
        if precision not in ('auto', 'fp32', 'fp16'):
            raise EngineError(f'onnxruntime serves auto, fp32 or fp16 (TensorRT '
                              f'provider), not {precision}; INT8 engines come from the '
                              f'optimizer\'s tensorrt target')
        choice = choose_providers(providers, ort.get_available_providers())
        if precision == 'fp16' and TENSORRT_EP not in choice.used:
            raise EngineError('fp16 with onnxruntime needs the TensorRT execution provider, '
                              f'which is not available here ({choice.dropped.get(TENSORRT_EP)})')
        if precision == 'auto':
            precision = 'fp16' if TENSORRT_EP in choice.used else 'fp32'
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning, leaving the cores to the node's other
        # stage and the robot: measured p50 7.9-12.1 ms vs 15.4-16.7 ms spinning (2 threads,
        # 2 busy cores).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provider_options = [tensorrt_options(precision, cache_dir)
                            if name == TENSORRT_EP and cache_dir is not None else {}
                            for name in choice.used]
        try:
            self._session = ort.InferenceSession(str(model), options, providers=choice.used,
                                                 provider_options=provider_options)
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise ModelError(f'cannot load ONNX model {model}: {exc}') from exc
        running = self._session.get_providers()
        for name in choice.used:
            if name not in running:  # present in the build, but failed to start here
                choice.dropped[name] = 'failed to start on this machine (CUDA/TensorRT ' \
                                       'libraries or GPU missing; see onnxruntime\'s log)'
        self.provider = running[0]
        self.providers = running
        self.dropped = choice.dropped
        if log is not None:
            for name, why in choice.dropped.items():
                log(f'onnxruntime: {name} not used: {why}')
        self._input, self._output = self._session.get_inputs()[0], \
            self._session.get_outputs()[0]
        super().__init__(self._network_hw(model, input_hw), self._channels(),
                         _ONNX_TYPES.get(self._input.type, self._input.type))
        self.precision = precision if self.provider == TENSORRT_EP else 'fp32'

    def _network_hw(self, model: Path, input_hw: tuple[int, int] | None) -> tuple[int, int]:
        shape = self._input.shape
        if len(shape) != 4 or shape[-1] != 3:
            raise ModelError(f'ONNX model {model} input has shape {shape}; expected NHWC with '
                             f'3 channels')
        if isinstance(shape[1], int) and isinstance(shape[2], int):
            return shape[1], shape[2]
        if input_hw is None:
            raise ModelError(f'ONNX model {model} has a dynamic input size; give input.height '
                             f'and input.width in model.json')
        return input_hw

    def _channels(self) -> int:
        shape = self._output.shape
        return shape[-1] if len(shape) == 4 else 1

    @property
    def label(self) -> str:
        """Engine, provider and precision, e.g. 'onnxruntime/CPUExecutionProvider/fp32'."""
        return f'{self.name}/{self.provider}/{self.precision}'

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run([self._output.name], {self._input.name: batch})[0]

    def close(self) -> None:
        self._session = None
