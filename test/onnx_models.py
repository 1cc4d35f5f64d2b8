"""ONNX models as teams bring them, built with onnx.helper: layouts, dtypes, heads, sizes.

Each is a small colour classifier with fixed weights (class 1 where red dominates, class 2 where
blue does), so a mask says something and a direct ONNX Runtime run is the reference. The
network sees ImageNet-normalised float input like a torchvision model, or uint8 pixels like a
Keras export with normalisation inside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: 1x1 convolution weights (classes x RGB) and biases: background, red, blue.
WEIGHTS = np.array([[0.0, 0.0, 0.0], [3.0, -1.5, -1.5], [-1.5, -1.5, 3.0]], np.float32)
BIAS = np.array([1.0, 0.0, 0.0], np.float32)


@dataclass(frozen=True)
class OnnxKind:
    """One ONNX model a team might bring, and the model.json it needs."""

    name: str
    layout: str = 'nchw'          # the network's own input layout
    dtype: str = 'float32'        # float32 | float16 | uint8 (normalisation inside)
    head: str = 'logits'          # logits | softmax | argmax (int64 ids)
    size: tuple[int, int] | None = (64, 96)  # (h, w); None = dynamic H/W
    stride: int = 1               # output at 1/stride of the input
    outputs: int = 1              # a second output (features) needs output.name
    description: dict = field(default_factory=dict)

    def model_json(self) -> dict:
        inp = {'resize': 'stretch'}
        if self.dtype != 'uint8':
            inp.update(dtype='float32', mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
        if self.size is None:
            inp.update(height=64, width=96)
        out = {'type': self.head}
        if self.outputs > 1:
            out['name'] = 'scores'
        return {'input': inp, 'output': out, 'class_names': ['background', 'red', 'blue'],
                **self.description}


KINDS = (
    OnnxKind('torchvision_like_nchw'),
    OnnxKind('dynamic_hw', size=None),
    OnnxKind('quarter_size_output', stride=4),
    OnnxKind('argmax_int64', head='argmax'),
    OnnxKind('float16', dtype='float16'),
    OnnxKind('keras_like_nhwc_uint8', layout='nhwc', dtype='uint8', head='softmax'),
    OnnxKind('two_outputs', outputs=2),
)


def build(kind: OnnxKind):
    """The onnx.ModelProto of `kind` (opset 17)."""
    from onnx import TensorProto, helper, numpy_helper

    elem = {'float32': TensorProto.FLOAT, 'float16': TensorProto.FLOAT16,
            'uint8': TensorProto.UINT8}[kind.dtype]
    h, w = kind.size if kind.size is not None else ('height', 'width')
    shape = ['batch', 3, h, w] if kind.layout == 'nchw' else ['batch', h, w, 3]
    nodes, inits = [], [numpy_helper.from_array(WEIGHTS.reshape(3, 3, 1, 1), 'weight'),
                        numpy_helper.from_array(BIAS, 'bias')]
    x = 'image'
    if kind.dtype == 'uint8':  # normalisation inside the model, as Keras exports carry it
        nodes.append(helper.make_node('Cast', [x], ['pixels'], to=TensorProto.FLOAT))
        inits += [numpy_helper.from_array(np.array(255.0, np.float32), 'scale')]
        nodes.append(helper.make_node('Div', ['pixels', 'scale'], ['unit']))
        x = 'unit'
        inits += [numpy_helper.from_array(
            np.array(IMAGENET_MEAN, np.float32).reshape(1, 1, 1, 3), 'mean'),
            numpy_helper.from_array(np.array(IMAGENET_STD, np.float32).reshape(1, 1, 1, 3),
                                    'std')]
        nodes += [helper.make_node('Sub', [x, 'mean'], ['centred']),
                  helper.make_node('Div', ['centred', 'std'], ['normalised'])]
        x = 'normalised'
    elif kind.dtype == 'float16':
        nodes.append(helper.make_node('Cast', [x], ['as_float'], to=TensorProto.FLOAT))
        x = 'as_float'
    if kind.layout == 'nhwc':
        nodes.append(helper.make_node('Transpose', [x], ['chw'], perm=[0, 3, 1, 2]))
        x = 'chw'
    nodes.append(helper.make_node('Conv', [x, 'weight', 'bias'], ['raw'], name='classifier'))
    x = 'raw'
    if kind.stride > 1:
        nodes.append(helper.make_node('AveragePool', [x], ['pooled'],
                                      kernel_shape=[kind.stride] * 2, strides=[kind.stride] * 2))
        x = 'pooled'
    if kind.head == 'softmax':
        nodes.append(helper.make_node('Softmax', [x], ['probs'], axis=1))
        x = 'probs'
    if kind.layout == 'nhwc':
        nodes.append(helper.make_node('Transpose', [x], ['hwc'], perm=[0, 2, 3, 1]))
        x = 'hwc'
    out_type = TensorProto.FLOAT
    if kind.head == 'argmax':
        nodes.append(helper.make_node('ArgMax', [x], ['ids'], axis=1, keepdims=0))
        x, out_type = 'ids', TensorProto.INT64
    elif kind.dtype == 'float16':
        nodes.append(helper.make_node('Cast', [x], ['half'], to=TensorProto.FLOAT16))
        x, out_type = 'half', TensorProto.FLOAT16
    main = 'scores' if kind.outputs > 1 else 'logits'
    nodes.append(helper.make_node('Identity', [x], [main]))
    outputs = [helper.make_tensor_value_info(main, out_type, None)]
    if kind.outputs > 1:
        nodes.append(helper.make_node('Identity', ['raw'], ['features']))
        outputs.insert(0, helper.make_tensor_value_info('features', TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, kind.name, [helper.make_tensor_value_info('image', elem,
                                                                               shape)],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    return model


def write(kind: OnnxKind, folder: Path) -> Path:
    """A model folder: model.onnx and model.json."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build(kind), str(folder / 'model.onnx'))
    (folder / 'model.json').write_text(json.dumps(kind.model_json()))
    return folder


def direct_mask(kind: OnnxKind, folder: Path, rgb: np.ndarray) -> np.ndarray:
    """The class mask a plain ONNX Runtime run gives at the network's output size (stretched).

    The frame is resized with the package's one resize rule, so only the serving can differ.
    """
    import onnxruntime as ort

    from jetson_seg.vision.image_conversion import resize

    height, width = kind.size or (64, 96)
    pixels = resize(rgb, (width, height))
    if kind.dtype == 'uint8':
        batch = pixels[None]
    else:
        batch = ((pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)[None]
        batch = batch.astype(np.float16) if kind.dtype == 'float16' else batch
    if kind.layout == 'nchw':
        batch = batch.transpose(0, 3, 1, 2)
    session = ort.InferenceSession(str(folder / 'model.onnx'),
                                   providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    out = session.run(['scores' if 'scores' in names else names[0]], {'image': batch})[0]
    if kind.head == 'argmax':
        return out[0].astype(np.uint8)
    channels_last = out[0] if kind.layout == 'nhwc' else out[0].transpose(1, 2, 0)
    return channels_last.astype(np.float32).argmax(-1).astype(np.uint8)
