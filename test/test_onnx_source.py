"""Bring your PyTorch model: a folder with model.onnx is served like a direct ONNX Runtime run.

NCHW and NHWC inputs, float32, float16 and uint8, logits, softmax and int64 argmax heads, a
dynamic H/W, an output at a quarter of the input size and a model with two outputs: each is
opened as the node opens it and its mask compared with ONNX Runtime run by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from onnx_models import KINDS, OnnxKind, build, direct_mask, write
from own_models import colour_frame
from jetson_seg.errors import EngineError, ModelError
from jetson_seg.model_loader import open_model
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def folders(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp('onnx_models')
    return {kind.name: write(kind, root / kind.name) for kind in KINDS}


def _served_mask(folder, frame: np.ndarray, **options) -> tuple[np.ndarray, str]:
    engine, info = open_model(str(folder), 'auto', threads=1, **options)
    try:
        pipeline = SegmentationPipeline(engine, info,
                                        PipelineConfig(mask_at_input_resolution=False))
        return pipeline.run(DecodedImage(frame, 'rgb'), Wanted()).mask, engine.label
    finally:
        engine.close()


@pytest.mark.parametrize('kind', KINDS, ids=[k.name for k in KINDS])
def test_every_onnx_kind_is_served_like_a_direct_run(kind: OnnxKind, folders):
    frame = colour_frame()
    expected = direct_mask(kind, folders[kind.name], frame)
    counts = np.bincount(expected.ravel(), minlength=3)
    assert (counts / expected.size > 0.03).all(), counts  # red, blue and background all there
    mask, label = _served_mask(folders[kind.name], frame)
    assert label.startswith('onnxruntime/CPUExecutionProvider')
    assert mask.shape == expected.shape
    assert (mask == expected).mean() >= 0.99


def test_refusals_name_the_file_and_the_fix(folders, tmp_path):
    two = folders['two_outputs']
    described = json.loads((two / 'model.json').read_text())
    del described['output']['name']
    (two / 'model.json').write_text(json.dumps(described))
    with pytest.raises(ModelError, match=r"outputs \['features', 'scores'\].*output.name"):
        open_model(str(two), 'auto', threads=1)
    dynamic = folders['dynamic_hw']
    described = json.loads((dynamic / 'model.json').read_text())
    for key in ('height', 'width'):
        del described['input'][key]
    (dynamic / 'model.json').write_text(json.dumps(described))
    with pytest.raises(ModelError, match='dynamic input size.*input.height'):
        open_model(str(dynamic), 'auto', threads=1)
    wrong = write(OnnxKind('wrong_classes', description={'class_names': ['bg', 'x']}),
                  tmp_path / 'wrong')
    with pytest.raises(ModelError, match='3 channel.*2 class_names'):
        open_model(str(wrong), 'auto', threads=1)
    with pytest.raises(EngineError, match='runs with engine onnxruntime'):
        open_model(str(folders['torchvision_like_nchw']), 'litert', threads=1)


def test_a_shape_that_cannot_tell_its_layout_needs_input_layout(tmp_path):
    import onnx

    model = build(OnnxKind('ambiguous'))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[1].ClearField('dim_value')
    dims[1].dim_param = 'channels'  # NCHW with a free channel axis: nothing tells
    folder = tmp_path / 'ambiguous'
    write(OnnxKind('ambiguous'), folder)
    onnx.save(model, str(folder / 'model.onnx'))
    with pytest.raises(ModelError, match='does not tell NCHW from NHWC.*input.layout'):
        open_model(str(folder), 'auto', threads=1)
    described = json.loads((folder / 'model.json').read_text())
    described['input']['layout'] = 'nchw'
    (folder / 'model.json').write_text(json.dumps(described))
    frame = colour_frame(1)
    mask, _ = _served_mask(folder, frame)
    assert (mask == direct_mask(OnnxKind('ambiguous'), folder, frame)).mean() >= 0.99


def test_the_optimizer_takes_an_onnx_source_and_the_node_serves_its_output(folders, tmp_path):
    from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig

    folder = folders['torchvision_like_nchw']
    manifest = Optimizer(OptimizerConfig(input_model=str(folder), output_dir=str(tmp_path / 'o'),
                                         targets=('onnx', 'litert', 'tf'), check_frames=2),
                         log=lambda _: None).run()
    assert manifest['model']['source_format'] == 'onnx'
    assert set(manifest['targets']) == {'onnx'}
    assert 'no well-kept converter' in manifest['skipped_targets']['litert']
    assert 'no TensorFlow graph' in manifest['skipped_targets']['tf']
    assert manifest['targets']['onnx']['check']['passed']
    frame = colour_frame(2)
    mask, label = _served_mask(tmp_path / 'o', frame)
    assert label.startswith('onnxruntime/')
    assert (mask == direct_mask(KINDS[0], folder, frame)).mean() >= 0.99


def test_node_serves_an_onnx_model_over_dds(folders, ros_env):
    from image_msgs import image_from_rgb
    from ros_harness import NodeProcess

    from jetson_seg.tools.node_client import NodeClient

    kind = next(k for k in KINDS if k.name == 'quarter_size_output')
    folder = folders[kind.name]
    node = NodeProcess({'threads': 1, 'model_path': str(folder), 'mask_resolution': 'network'},
                       ros_env, namespace='/onnx_source')
    client = NodeClient.on_own_node('onnx_source_client', namespace='/onnx_source',
                                    outputs=('mask', 'detections'))
    try:
        node.wait_for_output('active: listening')
        assert 'engine=onnxruntime/CPUExecutionProvider' in node.text
        client.connect(node_proc=node)
        frame = colour_frame(3)
        msg = image_from_rgb(frame, 'rgb8')
        msg.header.stamp.sec, msg.header.frame_id = 7, 'camera'
        answer = client.request(msg)
        expected = direct_mask(kind, folder, frame)
        mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(expected.shape)
        assert (mask == expected).mean() >= 0.99
        assert answer['mask'].header.frame_id == 'camera'
        assert {d.results[0].hypothesis.class_id for d in answer['detections'].detections} \
            >= {'1', '2'}
    finally:
        client.close()
        assert node.stop() == 0, node.text


def test_serving_an_onnx_model_never_imports_tensorflow(folders):
    import subprocess
    import sys

    probe = ('import sys; from jetson_seg.model_loader import open_model; '
             'engine, _ = open_model(sys.argv[1], "auto", threads=1); '
             'print(engine.label, [m for m in ("tensorflow", "keras") if m in sys.modules])')
    out = subprocess.run([sys.executable, '-c', probe, str(folders['torchvision_like_nchw'])],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith('onnxruntime/') and out[-1] == '[]', out


def test_onnx_int8_is_calibrated_checked_and_served_when_it_holds(folders, tmp_path):
    """precision_mode INT8: a QDQ file from the user's frames, its class IoU in the manifest."""
    import cv2

    from jetson_seg.optimize.conversion_settings import ConversionSettings
    from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig

    images = tmp_path / 'frames'
    images.mkdir()
    for seed in range(4):
        cv2.imwrite(str(images / f'{seed}.png'), colour_frame(seed)[..., ::-1])
    folder = folders['torchvision_like_nchw']
    out = tmp_path / 'int8'
    manifest = Optimizer(OptimizerConfig(
        input_model=str(folder), output_dir=str(out), targets=('onnx',),
        conversion=ConversionSettings(precision_mode='INT8'), calibration_images=str(images),
        calibration_frames=4, check_images=str(images), check_frames=4),
        log=lambda _: None).run()
    target = manifest['targets']['onnx']
    assert [f['role'] for f in target['files']] == ['model', 'int8']
    class_iou = target['check_int8']['class_iou']
    assert 0.9 <= class_iou <= 1.0
    import onnx
    int8_file = out / manifest['run'] / 'onnx' / 'model_int8.onnx'
    ops = {n.op_type for n in onnx.load(str(int8_file)).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops  # really quantized
    frame = colour_frame(5)
    expected = direct_mask(KINDS[0], folder, frame)
    for precision, label in (('int8', 'int8'), ('fp32', 'fp32')):
        mask, served = _served_mask(out, frame, precision=precision)
        assert served.endswith(f'/{label}')
        assert (mask == expected).mean() >= 0.97
    _, served = _served_mask(out, frame)  # auto: INT8 where its class IoU holds and it is
    from jetson_seg.optimize.artefacts import INT8_CLASS_IOU  # not slower where timed
    speed = target['speed_ms']
    assert speed['fp32'] > 0 and speed['int8'] > 0
    holds = class_iou >= INT8_CLASS_IOU and speed['int8'] <= speed['fp32']
    assert served.endswith('/int8' if holds else '/fp32')


PYTORCH_EXAMPLE = REPO / 'models' / 'pytorch_example'  # scripts/pytorch_example made it


def _direct_letterboxed(folder, rgb: np.ndarray, hw=(192, 256), stride=4) -> np.ndarray:
    """A plain ONNX Runtime run of an NCHW ImageNet-normalised model, letterboxed by hand.

    The ids over the frame's placement on the 1/`stride` output grid, as the node places it.
    """
    import onnxruntime as ort

    from jetson_seg.vision.image_conversion import resize

    height, width = hw
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    w, h = min(width, round(rgb.shape[1] * scale)), min(height, round(rgb.shape[0] * scale))
    x, y = (width - w) // 2, (height - h) // 2
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[y:y + h, x:x + w] = resize(rgb, (w, h))
    mean, std = np.float32((0.485, 0.456, 0.406)), np.float32((0.229, 0.224, 0.225))
    batch = ((canvas.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None]
    session = ort.InferenceSession(str(folder / 'model.onnx'),
                                   providers=['CPUExecutionProvider'])
    ids = session.run(None, {'image': batch})[0][0].argmax(0)
    x0, y0, x1, y1 = (int(np.floor(v / stride + 0.5)) for v in (x, y, x + w, y + h))
    return ids[y0:y1, x0:x1].astype(np.uint8)


def test_a_pytorch_export_is_served_over_dds_like_a_direct_run(ros_env):
    """The shipped PyTorch example on real photos, colour and grey, through the node.

    NCHW, ImageNet mean/std, logits, dynamic H/W, a 1/4-size output and a three-key model.json.
    """
    import sys

    import cv2
    from image_msgs import image_from_rgb
    from ros_harness import NodeProcess

    from jetson_seg.tools.node_client import NodeClient

    assets = Path(sys.prefix) / 'share' / 'jetson_seg' / 'test_assets'
    node = NodeProcess({'threads': 1, 'model_path': str(PYTORCH_EXAMPLE),
                        'mask_resolution': 'network'}, ros_env, namespace='/pytorch')
    client = NodeClient.on_own_node('pytorch_client', namespace='/pytorch', outputs=('mask',))
    try:
        node.wait_for_output('active: listening')
        assert 'engine=onnxruntime/CPUExecutionProvider' in node.text
        client.connect(node_proc=node)
        for stamp, name in enumerate(('astronaut.png', 'coffee.png', 'camera.png'), 1):
            photo = cv2.imread(str(assets / name), cv2.IMREAD_UNCHANGED)
            grey = photo.ndim == 2
            rgb = cv2.cvtColor(photo, cv2.COLOR_GRAY2RGB if grey else cv2.COLOR_BGR2RGB)
            msg = image_from_rgb(rgb, 'mono8' if grey else 'bgr8')
            msg.header.stamp.sec = stamp
            expected = _direct_letterboxed(PYTORCH_EXAMPLE, rgb)
            answer = client.request(msg)['mask']
            mask = np.frombuffer(answer.data, np.uint8).reshape(answer.height, answer.width)
            assert mask.shape == expected.shape, name
            assert (mask == expected).mean() >= 0.97, name
    finally:
        client.close()
        assert node.stop() == 0, node.text


def test_the_pytorch_example_reaches_its_stated_miou_on_generated_scenes():
    """The model card's figure is reproducible here: served by the package, 40 held-out scenes."""
    from jetson_seg.training.metrics import ConfusionMatrix
    from jetson_seg.training.scenes import scene_stream

    engine, info = open_model(str(PYTORCH_EXAMPLE), 'auto', threads=1)
    pipeline = SegmentationPipeline(engine, info, PipelineConfig())
    scores = ConfusionMatrix(4)
    for scene, _ in zip(scene_stream(1000003), range(40)):
        scores.add(scene.mask, pipeline.run(DecodedImage(scene.image, 'rgb'), Wanted()).mask)
    engine.close()
    assert scores.mean_iou() >= 0.80  # the card says 0.86 on 200 scenes


def test_the_optimizer_makes_checked_fp32_and_int8_from_the_pytorch_example(tmp_path):
    """A PyTorch export becomes checked FP32 and INT8 files; auto serves the one that holds.

    INT8 is calibrated on generated scenes; its class IoU and both speeds are in the manifest.
    """
    from jetson_seg.optimize.artefacts import INT8_CLASS_IOU
    from jetson_seg.optimize.conversion_settings import ConversionSettings
    from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig

    said: list[str] = []
    manifest = Optimizer(OptimizerConfig(
        input_model=str(PYTORCH_EXAMPLE), output_dir=str(tmp_path / 'out'), targets=('onnx',),
        conversion=ConversionSettings(precision_mode='INT8'), calibration_frames=16,
        check_frames=8),
        log=said.append).run()
    target = manifest['targets']['onnx']
    assert [f['role'] for f in target['files']] == ['model', 'int8']
    assert target['check']['mask_agreement'] >= 0.9999
    class_iou, speed = target['check_int8']['class_iou'], target['speed_ms']
    assert 0.5 < class_iou <= 1.0 and speed['int8'] > 0
    engine, _ = open_model(str(tmp_path / 'out'), 'auto', threads=1)
    picked = 'int8' if class_iou >= INT8_CLASS_IOU and speed['int8'] <= speed['fp32'] else 'fp32'
    assert engine.label.endswith(picked), (engine.label, class_iou, speed)
    engine.close()
