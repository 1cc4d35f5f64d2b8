"""Engine over an ONNX model run by ONNX Runtime, with execution providers in preference order.

The ONNX route is what current JetPack releases deploy through (TF-TRT ends with TensorFlow
2.17): ONNX Runtime's TensorRT provider builds TensorRT engines from the ONNX file, its CUDA
provider runs what TensorRT does not take, and its CPU provider runs anywhere. Providers this
build or machine lacks fall away with the reason, so one parameter serves a Jetson and a laptop.
Imports no TensorFlow.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.engines.gpu import CUDA_EP, nvidia_gpu_and_tensorrt, TENSORRT_EP
from jetson_seg.errors import EngineError, ModelError
from jetson_seg.model_info import LAYOUTS

CPU_EP = 'CPUExecutionProvider'
#: Default of the node's `onnx_providers`: TensorRT, then CUDA for what it leaves, then CPU.
PROVIDERS = (TENSORRT_EP, CUDA_EP, CPU_EP)
#: Folder, inside the model folder, of the TensorRT provider's engine cache.
TRT_CACHE = 'trt_cache'
#: ONNX input types -> what the engine takes (float16 is fed float32 and cast here).
_ONNX_TYPES = {'tensor(uint8)': 'uint8', 'tensor(float)': 'float32', 'tensor(float16)': 'float32'}


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


def writable_cache_root(preferred: Path) -> Path:
    """`preferred` (the model folder) when it is writable, else the user's cache folder.

    A model installed in a ROS share/ folder is read-only; its engines then go to
    $XDG_CACHE_HOME/jetson_seg (~/.cache/jetson_seg), where TensorRT's engine file names, which
    hash the model, keep models apart.
    """
    if os.access(preferred, os.W_OK):
        return Path(preferred)
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'jetson_seg'


def tensorrt_options(precision: str, cache_dir: Path) -> dict[str, str]:
    """TensorRT provider options: engines and timing cache kept under `cache_dir`, per key."""
    cache = writable_cache_root(Path(cache_dir)) / TRT_CACHE / \
        trt_cache_key(*nvidia_gpu_and_tensorrt(), precision)
    cache.mkdir(parents=True, exist_ok=True)
    return {'trt_engine_cache_enable': 'True', 'trt_engine_cache_path': str(cache),
            'trt_timing_cache_enable': 'True', 'trt_timing_cache_path': str(cache),
            'trt_fp16_enable': str(precision == 'fp16')}


class OnnxRuntimeEngine(Engine):
    """One InferenceSession; `label` names the provider that actually runs the graph.

    `cache_dir` (the model folder, or the user's cache where that is read-only) gets the
    TensorRT provider's engine cache, so engines are built on the first start only; `threads`
    sets the intra-op pool (0 = runtime default); precision auto is FP16 where the TensorRT
    provider runs, FP32 elsewhere. The engine takes and returns NHWC like every engine: an NCHW
    network (most PyTorch exports; `layout` where the shape cannot tell) gets its input
    transposed and its output transposed back, and a float16 one is fed float32 cast here.
    `input_name`/`output_name` pick among several inputs/outputs.
    """

    name = 'onnxruntime'

    def __init__(self, model: Path, threads: int = 0, providers: tuple[str, ...] = PROVIDERS,
                 input_hw: tuple[int, int] | None = None, precision: str = 'auto',
                 cache_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, layout: str | None = None,
                 input_name: str | None = None, output_name: str | None = None) -> None:
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
        self._input = _pick(self._session.get_inputs(), input_name, 'input', model)
        self._output = _pick(self._session.get_outputs(), output_name, 'output', model)
        self._nchw = _layout(self._input.shape, layout, model) == 'nchw'
        if self._input.type not in _ONNX_TYPES:
            raise ModelError(f'ONNX model {model} takes {self._input.type} input; this package '
                             f'feeds uint8, float32 or float16 images')
        self._cast = np.float16 if self._input.type == 'tensor(float16)' else None
        dtype = _ONNX_TYPES[self._input.type]
        hw = self._network_hw(model, input_hw)
        # One run on a blank frame tells the output's real shape (dynamic dims, 1/4 size).
        probe = self.infer(np.zeros((1, *hw, 3), dtype))
        super().__init__(hw, probe.shape[-1] if probe.ndim == 4 else 1, dtype)
        self.precision = precision if self.provider == TENSORRT_EP else 'fp32'

    def _network_hw(self, model: Path, input_hw: tuple[int, int] | None) -> tuple[int, int]:
        shape = self._input.shape
        height, width = shape[2:4] if self._nchw else shape[1:3]
        if isinstance(height, int) and isinstance(width, int):
            return height, width
        if input_hw is None:
            raise ModelError(f'ONNX model {model} has a dynamic input size; give input.height '
                             f'and input.width in model.json')
        return input_hw

    @property
    def label(self) -> str:
        """Engine, provider and precision, e.g. 'onnxruntime/CPUExecutionProvider/fp32'."""
        return f'{self.name}/{self.provider}/{self.precision}'

    def feed(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The session's input for an NHWC batch: the network's layout and dtype."""
        if self._nchw:
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        if self._cast is not None:
            batch = batch.astype(self._cast)
        return {self._input.name: batch}

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """NHWC in, NHWC (or an id map) out, whatever the network's own layout."""
        out = self._session.run([self._output.name], self.feed(batch))[0]
        if out.ndim == 4 and self._nchw:
            out = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        return out.astype(np.float32) if out.dtype == np.float16 else out

    def close(self) -> None:
        self._session = None


def _pick(values: list, name: str | None, kind: str, model: Path):
    """The input/output called `name`, or the only one; several need a name in model.json."""
    names = [value.name for value in values]
    if name is not None:
        if name not in names:
            raise ModelError(f'ONNX model {model} has no {kind} {name!r} (it has {names}); fix '
                             f'{kind}.name in model.json')
        if kind == 'input' and len(values) > 1:
            raise ModelError(f'ONNX model {model} has inputs {names}; one image input needed')
        return values[names.index(name)]
    if len(values) != 1:
        raise ModelError(f'ONNX model {model} has {kind}s {names}; name the one to use as '
                         f'{kind}.name in model.json')
    return values[0]


def _layout(shape: list, layout: str | None, model: Path) -> str:
    """'nchw' or 'nhwc' from an image input's shape; `layout` where the shape cannot tell."""
    if len(shape) != 4:
        raise ModelError(f'ONNX model {model} input has shape {shape}; expected a batch of '
                         f'3-channel images (NCHW or NHWC)')
    first, last = shape[1] == 3, shape[3] == 3
    found = 'nchw' if first and not last else 'nhwc' if last and not first else None
    if layout is None:
        if found is None:
            raise ModelError(f'ONNX model {model} input shape {shape} does not tell NCHW from '
                             f'NHWC; set input.layout to "nchw" or "nhwc" in model.json')
        return found
    channels = shape[1] if layout == 'nchw' else shape[3]
    if layout not in LAYOUTS or (isinstance(channels, int) and channels != 3):
        raise ModelError(f'ONNX model {model} input shape {shape} is not {layout} with 3 '
                         f'channels; fix input.layout in model.json')
    return layout
