"""TensorFlow's use of GPU memory: grow as needed, or a hard cap.

On a Jetson the GPU shares memory with the CPU; TensorFlow grabbing it all starves the rest of
the robot (and hung the origin's board). TensorFlow fixes this when it first touches the GPU, so
the node applies it before loading any model.
"""

from __future__ import annotations


def configure_gpu_memory(limit_mb: int = 0) -> list[str]:
    """Growth on every GPU (limit_mb 0) or a cap of `limit_mb` MiB; returns what was applied.

    Once TensorFlow has initialised a GPU the setting cannot change; such GPUs keep the first
    one and are reported as unchanged.
    """
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
