"""Small models of every format and head a team might bring, built in the test (no binaries).

Each is a real, if tiny, network with set weights: a 3x3 blur and a 1x1 head that calls a pixel
class k when colour channel (k - 1) % 3 dominates it, background when no colour does, so its
masks follow the coloured objects of a scene. `reference_mask` runs the same model
directly with its own runtime and preprocessing written here with OpenCV and numpy, independent
of the package, so the node's masks can be compared with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from jetson_seg.vision.image_conversion import resize


@dataclass(frozen=True)
class OwnModel:
    """How one test model is built and described."""

    name: str
    fmt: str                 # keras | h5 | saved_model | tflite
    head: str                # softmax | logits | sigmoid | argmax
    classes: tuple[str, ...]
    input_hw: tuple[int, int] = (64, 96)
    dtype: str = 'uint8'
    channel_order: str = 'rgb'
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: str = 'letterbox'
    extra: dict = field(default_factory=dict)  # more model.json input/output keys
    output_stride: int = 1   # > 1: the output is this much smaller than the input (pooled)

    def description(self) -> dict:
        inp = {'height': self.input_hw[0], 'width': self.input_hw[1], 'dtype': self.dtype,
               'channel_order': self.channel_order, 'mean': list(self.mean),
               'std': list(self.std), 'resize': self.resize, **self.extra.get('input', {})}
        return {'input': inp, 'output': {'type': self.head, **self.extra.get('output', {})},
                'class_names': list(self.classes)}


KINDS = (
    OwnModel('softmax_keras', 'keras', 'softmax', ('background', 'a', 'b')),
    OwnModel('logits_h5_imagenet', 'h5', 'logits', ('background', 'a', 'b', 'c'),
             input_hw=(64, 64), dtype='float32', mean=(0.485, 0.456, 0.406),
             std=(0.229, 0.224, 0.225), resize='stretch'),
    OwnModel('sigmoid_savedmodel', 'saved_model', 'sigmoid', ('background', 'person'),
             dtype='float32', extra={'output': {'threshold': 0.5}}),
    OwnModel('bgr_tflite_pm1', 'tflite', 'softmax', ('background', 'a', 'b'), dtype='float32',
             channel_order='bgr', mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    OwnModel('argmax_tflite', 'tflite', 'argmax', ('background', 'a', 'b')),
    OwnModel('quarter_size_keras', 'keras', 'softmax', ('background', 'a', 'b'),
             input_hw=(128, 192), output_stride=4),
)


def _channels(kind: OwnModel) -> int:
    return {'sigmoid': len(kind.classes) - 1, 'argmax': len(kind.classes)}.get(
        kind.head, len(kind.classes))


def _head_weights(kind: OwnModel, strength: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """1x1 head: class k >= 1 scores the dominance of channel (k - 1) % 3; background a margin."""
    channels = _channels(kind)
    first = 0 if kind.head == 'sigmoid' else 1  # a sigmoid head has no background channel
    kernel = np.zeros((1, 1, 3, channels), np.float32)
    bias = np.zeros(channels, np.float32)
    for out in range(channels):
        if out < first:
            bias[out] = 0.7 * strength
            continue
        for c in range(3):
            kernel[0, 0, c, out] = strength * ((c == (out - first) % 3) - 1 / 3)
        if first == 0:  # sigmoid: scores stay below one half unless the colour clearly dominates
            bias[out] = -0.3 * strength
    return kernel, bias


def build_keras(kind: OwnModel):
    """The network as a Keras model (head without its final activation for logits/argmax)."""
    import keras

    inputs = keras.Input((*kind.input_hw, 3), dtype=kind.dtype, name='image')
    x = inputs
    if kind.dtype == 'uint8':
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    blur = keras.layers.Conv2D(3, 3, padding='same', use_bias=False)
    head = keras.layers.Conv2D(_channels(kind), 1)
    x = blur(x)
    if kind.output_stride > 1:
        x = keras.layers.AveragePooling2D(kind.output_stride)(x)
    x = head(x)
    blur.set_weights([np.eye(3, dtype=np.float32)[None, None].repeat(3, 0).repeat(3, 1) / 9])
    head.set_weights(list(_head_weights(kind)))
    if kind.head == 'softmax':
        x = keras.layers.Softmax()(x)
    elif kind.head == 'sigmoid':
        x = keras.layers.Activation('sigmoid')(x)
    return keras.Model(inputs, x)


def write_model(kind: OwnModel, folder: Path) -> Path:
    """Build `kind`, save it in its format with model.json into `folder`; returns the folder."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    model = build_keras(kind)
    if kind.fmt == 'keras':
        model.save(folder / 'model.keras')
    elif kind.fmt == 'h5':
        model.save(folder / 'model.h5')
    elif kind.fmt == 'saved_model':
        _save_two_signatures(model, folder, kind)
    else:
        tflite_model = model
        if kind.head == 'argmax':
            import keras
            # tf.argmax, not keras.ops.argmax: Keras after 3.6 maps -0.0 first, with a BitwiseAnd
            # that is no builtin LiteRT op
            ids = keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1, output_type=tf.int32))(
                model.output)
            tflite_model = keras.Model(model.inputs, ids)
        data = tf.lite.TFLiteConverter.from_keras_model(tflite_model).convert()
        (folder / 'model.tflite').write_bytes(data)
    (folder / 'model.json').write_text(json.dumps(kind.description(), indent=2))
    return folder


def _save_two_signatures(model, folder: Path, kind: OwnModel) -> None:
    """A SavedModel whose default signature is the model and a second one returns features."""
    import tensorflow as tf

    module = tf.Module()
    module.model = model
    spec = tf.TensorSpec((None, *kind.input_hw, 3), kind.dtype)

    @tf.function(input_signature=[spec])
    def serve(pixels):
        return {'scores': model(pixels, training=False)}

    @tf.function(input_signature=[spec])
    def brightness(pixels):
        return {'mean': tf.reduce_mean(pixels, axis=-1)}

    module.serve, module.brightness = serve, brightness
    tf.saved_model.save(module, str(folder),
                        signatures={'serving_default': serve, 'brightness': brightness})


def network_input(kind: OwnModel, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The model's input for an RGB frame, and where the frame sits in it (x, y, w, h)."""
    height, width = kind.input_hw
    src_h, src_w = rgb.shape[:2]
    if kind.resize == 'stretch':
        placed = (0, 0, width, height)
    else:
        scale = min(width / src_w, height / src_h)
        w, h = min(width, round(src_w * scale)), min(height, round(src_h * scale))
        placed = ((width - w) // 2, (height - h) // 2, w, h)
    x, y, w, h = placed
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[y:y + h, x:x + w] = resize(rgb, (w, h))  # the package's one resize rule
    if kind.channel_order == 'bgr':
        canvas = canvas[..., ::-1]
    if kind.dtype == 'uint8':
        return canvas[None].copy(), placed
    norm = (canvas.astype(np.float32) / 255.0 - np.float32(kind.mean)) / np.float32(kind.std)
    return norm[None].astype(np.float32), placed


def run_directly(kind: OwnModel, folder: Path, batch: np.ndarray) -> np.ndarray:
    """The model's raw output for `batch`, from its own runtime."""
    if kind.fmt in ('keras', 'h5'):
        import keras
        model = keras.models.load_model(folder / f'model.{kind.fmt}', compile=False)
        return np.asarray(model(batch, training=False))
    if kind.fmt == 'saved_model':
        import tensorflow as tf
        loaded = tf.saved_model.load(str(folder))
        return loaded.signatures['serving_default'](pixels=tf.constant(batch))['scores'].numpy()
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(folder / 'model.tflite'))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]['index'], batch)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]['index'])


def reference_mask(kind: OwnModel, folder: Path, rgb: np.ndarray) -> np.ndarray:
    """Class mask at network size over the frame's placement (mask_resolution:=network)."""
    batch, (x, y, w, h) = network_input(kind, rgb)
    raw = run_directly(kind, folder, batch)[0]
    if kind.head == 'argmax':
        ids = raw.reshape(raw.shape[:2])
    elif kind.head == 'sigmoid':
        best = raw.argmax(-1)
        ids = np.where(raw.max(-1) > 0.5, best + 1, 0)
    else:
        ids = raw.argmax(-1)
    s = kind.output_stride  # the placement on the smaller output grid, halves rounded up
    x0, y0, x1, y1 = (int(np.floor(v / s + 0.5)) for v in (x, y, x + w, y + h))
    return ids[y0:y1, x0:x1].astype(np.uint8)


def colour_frame(seed: int = 0) -> np.ndarray:
    """A 640x480 RGB frame with red, green and blue objects over a grey, noisy background."""
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(120, 12, (480, 640, 3)), 0, 255).astype(np.uint8)
    cv2.circle(frame, (150, 170), 90, (220, 40, 30), -1, cv2.LINE_AA)
    cv2.rectangle(frame, (330, 60), (560, 220), (40, 200, 50), -1, cv2.LINE_AA)
    triangle = np.array([[260, 440], [420, 260], [600, 440]], np.int32)
    cv2.fillPoly(frame, [triangle], (30, 60, 210), cv2.LINE_AA)
    return cv2.GaussianBlur(frame, (5, 5), 0)
