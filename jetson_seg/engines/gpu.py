"""This machine's GPU as TensorFlow and ONNX Runtime see it: memory policy, TensorRT.

On a Jetson the GPU shares memory with the CPU; TensorFlow grabbing it all starves the rest of
the robot (and hung the origin's board). TensorFlow fixes this when it first touches the GPU, so
the policy is applied just before a TensorFlow engine or conversion runs, never for a node that
serves LiteRT, ONNX Runtime or TensorRT: those neither need TensorFlow nor import it, and a
Jetson often has none installed.
"""

from __future__ import annotations

import glob
import importlib.util
import subprocess
from pathlib import Path

#: Device nodes an NVIDIA GPU shows: desktop/server drivers, and Jetson's integrated GPU.
_GPU_DEVICE_NODES = ('/dev/nvidia[0-9]*', '/dev/nvhost-*gpu*', '/dev/nvgpu*')
#: ONNX Runtime's GPU execution providers, by the names engines.onnxruntime asks for them.
TENSORRT_EP, CUDA_EP = 'TensorrtExecutionProvider', 'CUDAExecutionProvider'


def gpu_device_present() -> bool:
    """True when an NVIDIA GPU device node exists: a check that needs no TensorFlow.

    Importing TensorFlow costs a LiteRT-only node hundreds of MB and seconds; where no GPU can
    exist the GPU questions below are answered without it.
    """
    return any(glob.glob(pattern) for pattern in _GPU_DEVICE_NODES)


def installed(module: str) -> bool:
    """True when `module` can be imported here, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; a module set to None
        return False


def configure_gpu_memory(limit_mb: int = 0) -> list[str]:
    """Growth on every GPU (limit_mb 0) or a cap of `limit_mb` MiB; returns what was applied.

    For TensorFlow's GPUs only, and only where a GPU and TensorFlow exist. Once TensorFlow has
    initialised a GPU the setting cannot change; such GPUs keep the first one and are reported
    as unchanged.
    """
    if not gpu_device_present() or not installed('tensorflow'):
        return []
    import tensorflow as tf

    applied = []
    for gpu in tf.config.list_physical_devices('GPU'):
        try:
            if limit_mb > 0:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit_mb)])
                applied.append(f'{gpu.name}: capped at {limit_mb} MiB')
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
                applied.append(f'{gpu.name}: memory growth')
        except (RuntimeError, ValueError):  # already initialised: keeps its first setting
            applied.append(f'{gpu.name}: unchanged (already initialised)')
    return applied


def tensorrt_available() -> bool:
    """True when TensorFlow is built with TF-TRT and libnvinfer is loadable, and a GPU exists.

    Only `is_tensorrt_enabled` is asked: querying TensorRT's version without libnvinfer aborts
    the whole process (seen with TF 2.17.1).
    """
    if not gpu_device_present() or not installed('tensorflow'):
        return False
    try:
        import tensorflow as tf
        from tensorflow.python.compiler.tensorrt import trt_convert
        enabled = trt_convert._pywrap_py_utils.is_tensorrt_enabled()
    except (ImportError, AttributeError):
        return False
    return bool(enabled) and bool(tf.config.list_physical_devices('GPU'))


def gpu_and_tensorrt() -> tuple[str, str] | None:
    """(GPU name, loaded TensorRT version) of this machine, or None without TensorRT + GPU."""
    if not tensorrt_available():
        return None
    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert

    gpu = tf.config.list_physical_devices('GPU')[0]
    name = tf.config.experimental.get_device_details(gpu).get('device_name', gpu.name)
    version = trt_convert._pywrap_py_utils.get_loaded_tensorrt_version()
    return name, '.'.join(str(v) for v in version)


def tensorflow_gpu() -> bool:
    """A GPU TensorFlow can use (TensorFlow imported only where it and a GPU device exist)."""
    if not gpu_device_present() or not installed('tensorflow'):
        return False
    try:
        import tensorflow as tf
    except ImportError:  # a TensorFlow wheel that does not fit this JetPack: as if absent
        return False
    return bool(tf.config.list_physical_devices('GPU'))


def onnxruntime_gpu() -> bool:
    """ONNX Runtime built with its TensorRT or CUDA provider, and a GPU device to run them."""
    if not gpu_device_present() or not installed('onnxruntime'):
        return False
    import onnxruntime
    return bool({TENSORRT_EP, CUDA_EP} & set(onnxruntime.get_available_providers()))


def _tensorrt_version() -> str:
    """TensorRT's version from its Python package, else from libnvinfer itself."""
    try:
        import tensorrt
        return tensorrt.__version__
    except ImportError:
        pass
    import ctypes
    for lib in ('libnvinfer.so.10', 'libnvinfer.so.8', 'libnvinfer.so'):
        try:
            number = ctypes.CDLL(lib).getInferLibVersion()
        except (OSError, AttributeError):
            continue
        major, rest = (number // 10000, number % 10000) if number >= 100000 else \
            (number // 1000, number % 1000)
        return f'{major}.{rest // 100}.{rest % 100}'
    return 'unknown'


def nvidia_gpu_and_tensorrt() -> tuple[str, str]:
    """(GPU or Jetson board name, TensorRT version) without TensorFlow, for the ONNX route.

    Names what TensorRT engines built here are bound to; 'unknown' where it cannot be told.
    """
    board = Path('/proc/device-tree/model')  # a Jetson names its module here
    gpu = board.read_text().strip('\x00 \n') if board.is_file() else ''
    if not gpu:
        try:
            out = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
                                 capture_output=True, text=True, timeout=20, check=False)
            gpu = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ''
        except (OSError, subprocess.TimeoutExpired):
            gpu = ''
    return gpu or 'unknown', _tensorrt_version()
