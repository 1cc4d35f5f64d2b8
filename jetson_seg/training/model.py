"""The default network: a compact UNet-like segmenter sized for real time on a CPU.

Depthwise-separable convolutions keep the cost near 0.3 GFLOP per 256x192 frame; BatchNorm after
every convolution (folded away by the optimizer), skip connections at every scale, and a branching
context block (two dilation rates plus global pooling) so that shape is judged from more than the
local edge. The input is uint8 RGB, normalised inside the graph so the hot path feeds raw pixels.
With `fake_quant` every tensor that LiteRT's INT8 kernels store in 8 bits is rounded to that grid
while training (quantisation-aware fine-tuning); the shipped network is the same one without
those layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers, ops


@dataclass(frozen=True)
class ModelSpec:
    """Shape of the default network; the input is (height, width, 3) uint8 RGB."""

    height: int = 192
    width: int = 256
    num_classes: int = 4
    widths: tuple[int, int, int, int] = (16, 24, 40, 64)
    residual_blocks: tuple[int, int] = (0, 0)  # extra blocks at 1/4 and 1/8 of the input
    fake_quant: bool = False  # round activations to the INT8 grid while training


class FakeQuant(layers.Layer):
    """Rounds a tensor to the 8-bit grid of its range; the gradient passes straight through.

    The range is a moving average of each batch's min and max (what INT8 calibration measures
    on its frames), widened to hold zero as LiteRT's asymmetric INT8 does; `fixed` pins it
    (softmax outputs are stored in steps of 1/256 from 0).
    """

    def __init__(self, momentum: float = 0.99, fixed: tuple[float, float] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.momentum, self.fixed = momentum, fixed

    def build(self, input_shape) -> None:
        self.lo = self.add_weight(shape=(), initializer='zeros', trainable=False, name='lo')
        self.hi = self.add_weight(shape=(), initializer='zeros', trainable=False, name='hi')
        self.seen = self.add_weight(shape=(), initializer='zeros', trainable=False,
                                    name='seen')

    def call(self, x, training: bool = False):
        if self.fixed is not None:
            lo, hi = self.fixed
        else:
            if training:
                m = ops.where(self.seen > 0, self.momentum, 0.0)
                batch_lo = ops.stop_gradient(ops.minimum(ops.min(x), 0.0))
                batch_hi = ops.stop_gradient(ops.maximum(ops.max(x), 0.0))
                self.lo.assign(m * self.lo + (1.0 - m) * batch_lo)
                self.hi.assign(m * self.hi + (1.0 - m) * batch_hi)
                self.seen.assign(1.0)
            lo, hi = self.lo, self.hi
        scale = ops.maximum(hi - lo, 1e-6) / 255.0
        zero = ops.round(-lo / scale)
        grid = (ops.clip(ops.round(x / scale) + zero, 0.0, 255.0) - zero) * scale
        return x + ops.stop_gradient(grid - x)

    def get_config(self) -> dict:
        return super().get_config() | {'momentum': self.momentum, 'fixed': self.fixed}


Quantize = Callable[..., object]


def _quantizer(spec: ModelSpec) -> Quantize:
    """`q(tensor, name)`: the tensor as INT8 kernels store it (fake_quant), or unchanged."""
    if not spec.fake_quant:
        return lambda x, name, fixed=None: x
    return lambda x, name, fixed=None: FakeQuant(fixed=fixed, name=f'{name}_fq')(x)


def _conv_bn(q: Quantize, x, filters: int, kernel: int = 3, stride: int = 1, name: str = ''):
    x = layers.Conv2D(filters, kernel, strides=stride, padding='same', use_bias=False,
                      name=f'{name}_conv')(x)
    x = layers.BatchNormalization(name=f'{name}_bn')(x)
    return q(layers.ReLU(name=f'{name}_relu')(x), name)


def _sep_bn(q: Quantize, x, filters: int, stride: int = 1, dilation: int = 1, name: str = ''):
    x = layers.DepthwiseConv2D(3, strides=stride, dilation_rate=dilation, padding='same',
                               use_bias=False, name=f'{name}_dw')(x)
    x = layers.BatchNormalization(name=f'{name}_dw_bn')(x)
    x = q(layers.ReLU(name=f'{name}_dw_relu')(x), f'{name}_dw')
    return _conv_bn(q, x, filters, 1, name=f'{name}_pw')


def _context(q: Quantize, x, filters: int, name: str):
    """Parallel branches with growing receptive field, merged by a 1x1 convolution."""
    a = _sep_bn(q, x, filters, dilation=2, name=f'{name}_d2')
    b = _sep_bn(q, x, filters, dilation=4, name=f'{name}_d4')
    g = q(layers.GlobalAveragePooling2D(keepdims=True, name=f'{name}_gap')(x), f'{name}_gap')
    g = layers.Conv2D(filters, 1, name=f'{name}_gap_conv')(g)
    g = q(layers.ReLU(name=f'{name}_gap_relu')(g), f'{name}_gap_relu')
    g = layers.UpSampling2D(size=(x.shape[1], x.shape[2]), name=f'{name}_gap_up')(g)
    merged = q(layers.Concatenate(name=f'{name}_cat')([x, a, b, g]), f'{name}_cat')
    return _conv_bn(q, merged, filters, 1, name=f'{name}_merge')


def _residual(q: Quantize, x, count: int, name: str):
    """`count` separable blocks with identity shortcuts: depth where pixels are few (cheap)."""
    for i in range(count):
        y = _sep_bn(q, x, x.shape[-1], name=f'{name}{i}')
        x = q(layers.Add(name=f'{name}{i}_add')([x, y]), f'{name}{i}_add')
    return x


def _up(q: Quantize, x, skip, filters: int, name: str):
    x = q(layers.UpSampling2D(2, interpolation='bilinear', name=f'{name}_up')(x), f'{name}_up')
    x = q(layers.Concatenate(name=f'{name}_cat')([x, skip]), f'{name}_cat')
    return _sep_bn(q, x, filters, name=f'{name}_sep')


def build_model(spec: ModelSpec = ModelSpec()) -> keras.Model:
    """Build the untrained network; output is per-pixel class probabilities (softmax)."""
    q = _quantizer(spec)
    w0, w1, w2, w3 = spec.widths
    inputs = keras.Input((spec.height, spec.width, 3), dtype='uint8', name='image')
    x = q(layers.Rescaling(1 / 127.5, offset=-1.0, name='normalize')(inputs), 'normalize')
    s0 = _conv_bn(q, x, w0, name='enc0')                       # 1/1
    s1 = _sep_bn(q, _sep_bn(q, s0, w1, stride=2, name='enc1a'), w1, name='enc1b')   # 1/2
    s2 = _sep_bn(q, _sep_bn(q, s1, w2, stride=2, name='enc2a'), w2, name='enc2b')   # 1/4
    s2 = _residual(q, s2, spec.residual_blocks[0], name='enc2r')
    s3 = _sep_bn(q, _sep_bn(q, s2, w3, stride=2, name='enc3a'), w3, name='enc3b')   # 1/8
    s3 = _residual(q, s3, spec.residual_blocks[1], name='enc3r')
    c = _context(q, s3, w3, name='ctx')
    d2 = _up(q, c, s2, w2, name='dec2')
    d1 = _up(q, d2, s1, w1, name='dec1')
    d0 = _up(q, d1, s0, w0, name='dec0')
    logits = q(layers.Conv2D(spec.num_classes, 1, name='classifier')(d0), 'classifier')
    probs = layers.Softmax(name='probabilities')(logits)
    probs = q(probs, 'probabilities', fixed=(0.0, 255 / 256))
    return keras.Model(inputs, probs, name='jetson_seg_unet')


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Every layer's weights from `source` into the same-named layer of `target`.

    Moves weights between the network with and without FakeQuant layers (which own only their
    ranges: a target's FakeQuant layers keep theirs).
    """
    for layer in source.layers:
        if layer.weights and not isinstance(layer, FakeQuant):
            target.get_layer(layer.name).set_weights(layer.get_weights())


def load_network(spec: ModelSpec, weights) -> keras.Model:
    """The network of `spec` with weights saved from that same network (a .weights.h5)."""
    model = build_model(spec)
    model.load_weights(weights)
    return model


def count_flops(model: keras.Model) -> int:
    """Floating-point operations of one forward pass at batch 1 (TF profiler, 2 per MAC)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    spec = tf.TensorSpec((1, *model.input_shape[1:]), model.inputs[0].dtype)
    frozen = convert_variables_to_constants_v2(tf.function(model).get_concrete_function(spec))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts['output'] = 'none'
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name='')
        stats = tf.compat.v1.profiler.profile(graph, options=opts)
    return int(stats.total_float_ops)
