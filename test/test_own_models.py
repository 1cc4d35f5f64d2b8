"""Bring your own model: every format and head served, matched with a direct run, or refused.

The models are built here (test/own_models.py), saved in their format with a model.json, and
compared with the same model run by its own runtime on the same frame.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_msgs import image_from_rgb, stamped
from own_models import KINDS, OwnModel, reference_mask, colour_frame, write_model
from ros_harness import NodeProcess

from jetson_seg.errors import EngineError, ModelError
from jetson_seg.model_loader import open_model
from jetson_seg.optimize.conversion_settings import ConversionSettings
from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.vision.image_conversion import DecodedImage, resize
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

STAMPS = itertools.count(70_000)
ENGINES = {'keras': ('tf', 'litert'), 'h5': ('tf', 'litert'), 'saved_model': ('tf', 'litert'),
           'tflite': ('litert',)}


@pytest.fixture(scope='module')
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp('own_models')
    return {kind.name: write_model(kind, root / kind.name) for kind in KINDS}


@pytest.fixture(scope='module')
def optimized(folders, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each model through the optimizer, checked on the user's own frames (an image folder)."""
    root = tmp_path_factory.mktemp('optimized')
    frames = root / 'frames'
    frames.mkdir()
    for index in range(3):
        cv2.imwrite(str(frames / f'{index}.png'), colour_frame(index)[..., ::-1])
    runs = {}
    for kind in KINDS:
        log: list[str] = []
        config = OptimizerConfig(input_model=str(folders[kind.name]),
                                 output_dir=str(root / kind.name), check_images=str(frames),
                                 check_frames=3,
                                 conversion=ConversionSettings(precision_mode='FP16'))
        runs[kind.name] = (Path(config.output_dir), Optimizer(config, log=log.append).run())
    return runs


def _agreement(mask: np.ndarray, expected: np.ndarray) -> float:
    assert mask.shape == expected.shape
    return float((mask == expected).mean())


def _meaningful(expected: np.ndarray) -> None:
    """The reference must show objects, or agreement would say nothing."""
    counts = np.bincount(expected.ravel())
    assert (counts / expected.size > 0.02).sum() >= 2, counts


@pytest.mark.parametrize('kind', KINDS, ids=[k.name for k in KINDS])
def test_every_engine_matches_a_direct_run_of_the_model(kind: OwnModel, folders):
    frame = colour_frame()
    expected = reference_mask(kind, folders[kind.name], frame)
    _meaningful(expected)
    for engine_name in ENGINES[kind.fmt]:
        engine, info = open_model(str(folders[kind.name]), engine_name, threads=1)
        try:
            pipeline = SegmentationPipeline(engine, info,
                                            PipelineConfig(mask_at_input_resolution=False))
            result = pipeline.run(DecodedImage(frame, 'rgb'), Wanted())
        finally:
            engine.close()
        assert _agreement(result.mask, expected) >= 0.99, engine_name
        assert result.regions and all(0.0 < r.score <= 1.0 for r in result.regions)
        if kind.head == 'argmax':
            assert {r.score for r in result.regions} == {1.0}


@pytest.mark.parametrize('kind', KINDS, ids=[k.name for k in KINDS])
def test_optimizer_takes_every_format_and_its_output_serves(kind: OwnModel, folders,
                                                            optimized):
    out, manifest = optimized[kind.name]
    expected = reference_mask(kind, folders[kind.name], colour_frame())
    if kind.fmt == 'tflite':  # no TensorFlow graph inside: copied, checked, described
        assert set(manifest['targets']) == {'litert'}
        assert set(manifest['skipped_targets']) == {'tf', 'tftrt'}
    else:
        assert set(manifest['targets']) == {'tf', 'tftrt', 'litert'}
        assert manifest['targets']['litert']['check']['FP16']['mask_agreement'] >= 0.999
    assert manifest['model']['output']['type'] == kind.head
    assert manifest['model']['class_names'] == list(kind.classes)
    for engine_name in sorted(set(manifest['targets']) - {'tftrt'}):
        engine, info = open_model(str(out), engine_name, threads=1)
        try:
            pipeline = SegmentationPipeline(engine, info,
                                            PipelineConfig(mask_at_input_resolution=False))
            mask = pipeline.run(DecodedImage(colour_frame(), 'rgb'), Wanted()).mask
        finally:
            engine.close()
        assert _agreement(mask, expected) >= 0.99, engine_name


@pytest.mark.parametrize('served', ['model', 'optimized'])
@pytest.mark.parametrize('kind', KINDS, ids=[k.name for k in KINDS])
def test_node_serves_the_model_over_dds(kind: OwnModel, served: str, folders, optimized,
                                        ros_env):
    namespace = f'/own_{kind.name}_{served}'
    model_file = folders[kind.name] / {'keras': 'model.keras', 'h5': 'model.h5',
                                       'saved_model': '', 'tflite': 'model.tflite'}[kind.fmt]
    path = str(model_file).rstrip('/') if served == 'model' else str(optimized[kind.name][0])
    node = NodeProcess({'threads': 1, 'model_path': path, 'mask_resolution': 'network'},
                       ros_env, namespace=namespace)
    client = NodeClient.on_own_node(f'client_{kind.name}_{served}', namespace=namespace,
                                    outputs=('mask', 'detections'))
    try:
        node.wait_for_output('active: listening')
        client.connect()
        frame = colour_frame(1)
        answer = client.request(stamped(image_from_rgb(frame, 'bgr8'), next(STAMPS)))
        mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(
            answer['mask'].height, answer['mask'].width)
        expected = reference_mask(kind, folders[kind.name], frame)
        _meaningful(expected)
        assert _agreement(mask, expected) >= 0.99
        assert client.label_info and [c.class_name for c in client.label_info[-1].class_map] \
            == list(kind.classes)
    finally:
        client.close()
        assert node.stop() == 0, node.text


def _copy(folders, name: str, tmp_path: Path, **changes) -> Path:
    folder = tmp_path / name
    shutil.copytree(folders[name], folder)
    description = json.loads((folder / 'model.json').read_text())
    for section, values in changes.items():
        if isinstance(values, dict):
            description.setdefault(section, {}).update(values)
        else:
            description[section] = values
    (folder / 'model.json').write_text(json.dumps(description))
    return folder


def test_output_channels_must_match_class_names(folders, tmp_path):
    folder = _copy(folders, 'softmax_keras', tmp_path, class_names=['bg', 'a', 'b', 'c'])
    with pytest.raises(ModelError, match=r'outputs 3 channel.*4 class_names.*model.json'):
        open_model(str(folder), 'tf')
    sigmoid = _copy(folders, 'sigmoid_savedmodel', tmp_path, class_names=['bg', 'a', 'b'])
    with pytest.raises(ModelError, match='outputs 1 channel.*sigmoid head.*needs 2'):
        open_model(str(sigmoid), 'tf')


def test_input_dtype_and_size_must_match_the_network(folders, tmp_path):
    folder = _copy(folders, 'bgr_tflite_pm1', tmp_path, input={'dtype': 'uint8'})
    with pytest.raises(ModelError, match="float32 input.*set it to 'float32'"):
        open_model(str(folder), 'litert')
    wrong = _copy(folders, 'argmax_tflite', tmp_path, input={'height': 32})
    with pytest.raises(ModelError, match='takes 96x64.*says 96x32'):
        open_model(str(wrong), 'litert')


def test_size_may_be_left_out_when_the_network_has_one(folders, tmp_path):
    description = json.loads((folders['softmax_keras'] / 'model.json').read_text())
    del description['input']['height'], description['input']['width']
    folder = _copy(folders, 'softmax_keras', tmp_path, input=description['input'])
    (folder / 'model.json').write_text(json.dumps(description))
    engine, info = open_model(str(folder), 'litert')
    assert info.input_hw == (64, 96)
    engine.close()


def _tflite(folder: Path, model, description: dict) -> Path:
    import tensorflow as tf

    folder.mkdir()
    (folder / 'model.tflite').write_bytes(
        tf.lite.TFLiteConverter.from_keras_model(model).convert())
    (folder / 'model.json').write_text(json.dumps(description))
    return folder


def test_nchw_and_dynamic_inputs(tmp_path):
    import keras

    nchw_in = keras.Input((3, 32, 32))
    nchw = keras.Model(nchw_in, keras.layers.Conv2D(2, 1)(keras.layers.Permute((2, 3, 1))(
        nchw_in)))
    folder = _tflite(tmp_path / 'nchw', nchw, {'class_names': ['bg', 'x']})
    with pytest.raises(ModelError, match='expected NHWC with 3 channels'):
        open_model(str(folder), 'litert')
    dyn_in = keras.Input((None, None, 3))
    dynamic = keras.Model(dyn_in, keras.layers.Conv2D(2, 1)(dyn_in))
    folder = _tflite(tmp_path / 'dynamic', dynamic,
                     {'class_names': ['bg', 'x'], 'input': {'dtype': 'float32'}})
    with pytest.raises(ModelError, match='dynamic input size; give input.height'):
        open_model(str(folder), 'litert')
    description = {'class_names': ['bg', 'x'],
                   'input': {'dtype': 'float32', 'height': 48, 'width': 40}}
    (folder / 'model.json').write_text(json.dumps(description))
    engine, info = open_model(str(folder), 'litert')
    assert engine.input_hw == info.input_hw == (48, 40)
    engine.close()


def test_savedmodel_with_several_outputs_needs_output_name(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    spec = tf.TensorSpec((None, 16, 16, 3), tf.float32)

    @tf.function(input_signature=[spec])
    def serve(image):
        return {'scores': tf.nn.softmax(tf.concat([image[..., :1], -image[..., :1]], -1)),
                'features': image * 2.0}

    module.serve = serve
    tf.saved_model.save(module, str(tmp_path), signatures={'serving_default': serve})
    (tmp_path / 'model.json').write_text(json.dumps(
        {'class_names': ['bg', 'x'], 'input': {'dtype': 'float32'}}))
    with pytest.raises(ModelError, match=r"outputs \['features', 'scores'\].*output.name"):
        open_model(str(tmp_path), 'tf')
    (tmp_path / 'model.json').write_text(json.dumps(
        {'class_names': ['bg', 'x'], 'input': {'dtype': 'float32'},
         'output': {'name': 'scores'}}))
    engine, info = open_model(str(tmp_path), 'tf')
    assert engine.output_channels == 2 and info.input_hw == (16, 16)
    engine.close()


def test_code_in_a_model_is_refused_unless_trusted(tmp_path):
    import keras

    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(
        keras.layers.Lambda(lambda t: t * 2.0)(inputs)))
    for fmt in ('h5', 'keras'):
        folder = tmp_path / fmt
        folder.mkdir()
        model.save(folder / f'model.{fmt}')
        (folder / 'model.json').write_text(json.dumps(
            {'class_names': ['bg', 'x'], 'input': {'dtype': 'float32'},
             'output': {'type': 'logits'}}))
        with pytest.raises(ModelError, match='Lambda|trust_model'):
            open_model(str(folder), 'tf')
        engine, _ = open_model(str(folder), 'tf', trust=True)
        engine.close()


def test_a_folder_needs_exactly_one_model_and_tflite_runs_on_litert(folders, tmp_path):
    both = _copy(folders, 'argmax_tflite', tmp_path)
    shutil.copy(folders['softmax_keras'] / 'model.keras', both / 'model.keras')
    with pytest.raises(ModelError, match='exactly one of'):
        open_model(str(both), 'auto')
    engine, _ = open_model(str(both / 'model.tflite'), 'auto')  # the file itself: chosen
    assert engine.name == 'litert'
    engine.close()
    with pytest.raises(EngineError, match='runs with engine litert'):
        open_model(str(both / 'model.tflite'), 'tf')


ASSETS = Path(sys.prefix) / 'share' / 'jetson_seg' / 'test_assets'  # scripts/setup_env.sh


def test_a_pretrained_tflite_from_elsewhere_serves_real_photos(ros_env, tmp_path):
    """MediaPipe's selfie segmenter (256x256 float [0, 1], one sigmoid channel), as a team
    would bring it: the .tflite plus a model.json, served over DDS on photos of people."""
    folder = tmp_path / 'selfie'
    folder.mkdir()
    shutil.copy(ASSETS / 'selfie_segmentation.tflite', folder / 'model.tflite')
    (folder / 'model.json').write_text(json.dumps(
        {'input': {'dtype': 'float32', 'resize': 'stretch'},
         'output': {'type': 'sigmoid', 'threshold': 0.5},
         'class_names': ['background', 'person']}))
    from ai_edge_litert.interpreter import Interpreter
    direct = Interpreter(model_path=str(folder / 'model.tflite'))
    direct.allocate_tensors()
    node = NodeProcess({'threads': 1, 'model_path': str(folder), 'mask_resolution': 'network'},
                       ros_env, namespace='/selfie')
    client = NodeClient.on_own_node('selfie_client', namespace='/selfie', outputs=('mask',))
    try:
        node.wait_for_output('active: listening')
        client.connect()
        for name in ('astronaut.png', 'camera.png'):  # colour, and grey (sent as mono8)
            photo = cv2.imread(str(ASSETS / name), cv2.IMREAD_UNCHANGED)
            encoding = 'mono8' if photo.ndim == 2 else 'bgr8'
            rgb = cv2.cvtColor(photo, cv2.COLOR_GRAY2RGB if photo.ndim == 2 else
                               cv2.COLOR_BGR2RGB)
            answer = client.request(stamped(image_from_rgb(rgb, encoding), next(STAMPS)))
            mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(256, 256)
            batch = resize(rgb, (256, 256))[None]
            direct.set_tensor(direct.get_input_details()[0]['index'],
                              batch.astype(np.float32) / 255.0)
            direct.invoke()
            expected = (direct.get_tensor(direct.get_output_details()[0]['index'])[0, ..., 0]
                        > 0.5).astype(np.uint8)
            assert _agreement(mask, expected) >= 0.99, name
            assert 0.2 < expected.mean() < 0.8, name  # a person fills much of these photos
    finally:
        client.close()
        assert node.stop() == 0, node.text


def test_a_keras_model_with_a_free_input_size_runs_at_the_described_size(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)).save(tmp_path / 'model.keras')
    (tmp_path / 'model.json').write_text(json.dumps(
        {'class_names': ['bg', 'x'], 'input': {'dtype': 'float32', 'height': 40, 'width': 56},
         'output': {'type': 'logits'}}))
    engine, info = open_model(str(tmp_path), 'litert')
    assert engine.input_hw == info.input_hw == (40, 56)
    engine.close()


@pytest.mark.parametrize('size', [(640, 480), (1280, 720)])
def test_an_output_smaller_than_the_input_covers_the_whole_frame(folders, size):
    """A quarter-size output (SegFormer-like), letterboxed or not, masks the frame at its size."""
    kind = next(k for k in KINDS if k.output_stride > 1)
    frame = cv2.resize(colour_frame(2), size, interpolation=cv2.INTER_NEAREST)
    engine, info = open_model(str(folders[kind.name]), 'litert', threads=1)
    try:
        result = SegmentationPipeline(engine, info, PipelineConfig()).run(
            DecodedImage(frame, 'rgb'), Wanted())
    finally:
        engine.close()
    expected = cv2.resize(reference_mask(kind, folders[kind.name], frame), size,
                          interpolation=cv2.INTER_NEAREST)
    _meaningful(expected)
    assert result.mask.shape == frame.shape[:2]
    assert _agreement(result.mask, expected) >= 0.95  # edges: bilinear scores vs nearest ids
    for region in result.regions:  # every detection lies on its class in the frame
        inside = expected[region.y0:region.y1, region.x0:region.x1]
        assert (inside == region.class_id).mean() > 0.5, region
