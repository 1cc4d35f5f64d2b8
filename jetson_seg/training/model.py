"""The default network: a compact UNet-like segmenter sized for real time on a CPU.

Depthwise-separable convolutions keep the cost near 0.3 GFLOP per 256x192 frame; BatchNorm after
every convolution (folded away by the optimizer), skip connections at every scale, and a branching
context block (two dilation rates plus global pooling) so that shape is judged from more than the
local edge. The input is uint8 RGB, normalised inside the graph so the hot path feeds raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers


@dataclass(frozen=True)
class ModelSpec:
    """Shape of the default network; the input is (height, width, 3) uint8 RGB."""

    height: int = 192
    width: int = 256
    num_classes: int = 4
    widths: tuple[int, int, int, int] = (16, 24, 40, 64)
    residual_blocks: tuple[int, int] = (0, 0)  # extra blocks at 1/4 and 1/8 of the output
    #: 2: the first convolution halves the input, so a 512x384 input costs about what 256x192
    #: did (only that convolution sees the finer pixels) and the output is half the input
    stem_stride: int = 1

    def __post_init__(self) -> None:
        step = 8 * self.stem_stride  # three more halvings after the stem, then upsampling back
        if self.height % step or self.width % step:
            raise ValueError(f'with stem stride {self.stem_stride} the input size must be a '
                             f'multiple of {step}, got {self.width}x{self.height}')


def _conv_bn(x, filters: int, kernel: int = 3, stride: int = 1, name: str = ''):
    x = layers.Conv2D(filters, kernel, strides=stride, padding='same', use_bias=False,
                      name=f'{name}_conv')(x)
    x = layers.BatchNormalization(name=f'{name}_bn')(x)
    return layers.ReLU(name=f'{name}_relu')(x)


def _sep_bn(x, filters: int, stride: int = 1, dilation: int = 1, name: str = ''):
    x = layers.DepthwiseConv2D(3, strides=stride, dilation_rate=dilation, padding='same',
                               use_bias=False, name=f'{name}_dw')(x)
    x = layers.BatchNormalization(name=f'{name}_dw_bn')(x)
    x = layers.ReLU(name=f'{name}_dw_relu')(x)
    return _conv_bn(x, filters, 1, name=f'{name}_pw')


def _context(x, filters: int, name: str):
    """Parallel branches with growing receptive field, merged by a 1x1 convolution."""
    a = _sep_bn(x, filters, dilation=2, name=f'{name}_d2')
    b = _sep_bn(x, filters, dilation=4, name=f'{name}_d4')
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f'{name}_gap')(x)
    g = layers.Conv2D(filters, 1, name=f'{name}_gap_conv')(g)
    g = layers.ReLU(name=f'{name}_gap_relu')(g)
    g = layers.UpSampling2D(size=(x.shape[1], x.shape[2]), name=f'{name}_gap_up')(g)
    merged = layers.Concatenate(name=f'{name}_cat')([x, a, b, g])
    return _conv_bn(merged, filters, 1, name=f'{name}_merge')


def _residual(x, count: int, name: str):
    """`count` separable blocks with identity shortcuts: depth where pixels are few (cheap)."""
    for i in range(count):
        y = _sep_bn(x, x.shape[-1], name=f'{name}{i}')
        x = layers.Add(name=f'{name}{i}_add')([x, y])
    return x


def _up(x, skip, filters: int, name: str):
    x = layers.UpSampling2D(2, interpolation='bilinear', name=f'{name}_up')(x)
    x = layers.Concatenate(name=f'{name}_cat')([x, skip])
    return _sep_bn(x, filters, name=f'{name}_sep')


def build_model(spec: ModelSpec = ModelSpec()) -> keras.Model:
    """Build the untrained network; output is per-pixel class probabilities (softmax)."""
    w0, w1, w2, w3 = spec.widths
    inputs = keras.Input((spec.height, spec.width, 3), dtype='uint8', name='image')
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name='normalize')(inputs)
    s0 = _conv_bn(x, w0, stride=spec.stem_stride, name='enc0')  # the output grid
    s1 = _sep_bn(_sep_bn(s0, w1, stride=2, name='enc1a'), w1, name='enc1b')   # 1/2
    s2 = _sep_bn(_sep_bn(s1, w2, stride=2, name='enc2a'), w2, name='enc2b')   # 1/4
    s2 = _residual(s2, spec.residual_blocks[0], name='enc2r')
    s3 = _sep_bn(_sep_bn(s2, w3, stride=2, name='enc3a'), w3, name='enc3b')   # 1/8
    s3 = _residual(s3, spec.residual_blocks[1], name='enc3r')
    c = _context(s3, w3, name='ctx')
    d2 = _up(c, s2, w2, name='dec2')
    d1 = _up(d2, s1, w1, name='dec1')
    d0 = _up(d1, s0, w0, name='dec0')
    logits = layers.Conv2D(spec.num_classes, 1, name='classifier')(d0)
    probs = layers.Softmax(name='probabilities')(logits)
    return keras.Model(inputs, probs, name='jetson_seg_unet')


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy weights layer by layer (by name) from a trained network into a grown variant.

    Why: a wider input or extra residual blocks then start where the trained network ended
    instead of from scratch. Layers the source lacks keep their fresh weights, except that each
    new block's last BatchNorm scale starts at 1% so the block adds almost nothing at first
    (not zero: its ReLU would pass no gradient). Returns the names of the new layers.
    """
    known = {layer.name: layer for layer in source.layers}
    new = []
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in known:
            new.append(layer.name)
            if isinstance(layer, layers.BatchNormalization) and layer.name.endswith('_pw_bn'):
                weights = layer.get_weights()
                weights[0] = weights[0] * 0.01
                layer.set_weights(weights)
            continue
        layer.set_weights(known[layer.name].get_weights())  # shapes must match: raises if not
    return new


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
