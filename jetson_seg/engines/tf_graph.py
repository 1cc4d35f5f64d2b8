"""Engine over a frozen, grappler-optimized TensorFlow GraphDef (no Keras on the hot path)."""

from __future__ import annotations

import numpy as np

from jetson_seg.engines.base import Engine
from jetson_seg.errors import EngineError


class FrozenGraphEngine(Engine):
    """Runs a frozen GraphDef in a TF1-style session with explicit thread pools.

    A session keeps the feed/fetch path short and lets each process pin its own thread counts,
    which matters on a 2-core machine where several runtimes would otherwise fight.
    """

    name = 'tf'

    def __init__(self, graph_def, input_name: str, output_name: str, input_hw: tuple[int, int],
                 output_channels: int, threads: int = 0) -> None:
        import tensorflow as tf

        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name='')
        try:
            self._input = self._graph.get_tensor_by_name(input_name)
            self._output = self._graph.get_tensor_by_name(output_name)
        except KeyError as exc:
            raise EngineError(f'frozen graph has no tensor {exc}') from exc
        super().__init__(input_hw, output_channels, self._input.dtype.name)
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                          inter_op_parallelism_threads=1 if threads else 0)
        config.gpu_options.allow_growth = True
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)
        self._run = self._session.make_callable(self._output, [self._input])

    @classmethod
    def from_frozen(cls, frozen, threads: int = 0) -> 'FrozenGraphEngine':
        """Engine over an optimize.freeze.FrozenModel (its graph, tensor names and shape)."""
        return cls(frozen.graph_def, frozen.input_name, frozen.output_name, frozen.input_hw,
                   frozen.output_channels, threads)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._run(batch)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
