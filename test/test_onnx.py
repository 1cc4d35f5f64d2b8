"""The ONNX route: optimizer target onnx, engine onnxruntime served over DDS, and what a CPU
cannot do (GPU providers fall away with the reason; the tensorrt target is refused).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_msgs import image_from_rgb, stamped
from own_models import KINDS, colour_frame, reference_mask, write_model
from ros_harness import NodeProcess

from jetson_seg.engines.onnxruntime import (CPU_EP, CUDA_EP, PROVIDERS, TENSORRT_EP,
                                            TRT_CACHE, OnnxRuntimeEngine, choose_providers,
                                            tensorrt_options, trt_cache_key)
from jetson_seg.errors import EngineError
from jetson_seg.model_info import default_model_dir
from jetson_seg.model_loader import open_model
from jetson_seg.optimize.artefacts import verified_file
from jetson_seg.optimize.convert_onnx import DESCRIPTION_KEY, OPSET
from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig, OptimizerError
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.scenes import scene_stream
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

STAMPS = itertools.count(90_000)
OWN = {kind.name: kind for kind in KINDS}
ASSETS = Path(__file__).resolve().parent.parent / '.venv' / 'share' / 'jetson_seg' / \
    'test_assets'


def _optimize(source: str, out: Path, **extra) -> dict:
    config = OptimizerConfig(input_model=source, output_dir=str(out),
                             targets=('onnx', 'tensorrt'), check_frames=4, **extra)
    return Optimizer(config, log=lambda line: None).run()


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> dict[str, tuple[Path, dict, Path]]:
    """(output, manifest, source) of the default model, a SavedModel (float input, sigmoid
    head) and a .tflite (argmax head) through `targets:=[onnx, tensorrt]`."""
    root = tmp_path_factory.mktemp('onnx')
    frames = root / 'frames'
    frames.mkdir()
    for index in range(3):
        cv2.imwrite(str(frames / f'{index}.png'), colour_frame(index)[..., ::-1])
    runs = {'default': (root / 'default', _optimize('', root / 'default'), default_model_dir())}
    for name in ('sigmoid_savedmodel', 'argmax_tflite'):
        folder = write_model(OWN[name], root / 'models' / name)
        runs[name] = (root / name, _optimize(str(folder), root / name,
                                             check_images=str(frames)), folder)
    return runs


def _network_mask(engine_name: str, path: Path, frame: np.ndarray) -> np.ndarray:
    engine, info = open_model(str(path), engine_name, threads=1)
    try:
        pipeline = SegmentationPipeline(engine, info,
                                        PipelineConfig(mask_at_input_resolution=False))
        return pipeline.run(DecodedImage(frame, 'rgb'), Wanted()).mask
    finally:
        engine.close()


def _agreement(mask: np.ndarray, expected: np.ndarray) -> float:
    """Fraction of equal classes where either mask shows an object (background is easy)."""
    assert mask.shape == expected.shape
    objects = (mask > 0) | (expected > 0)
    assert objects.mean() > 0.02, np.bincount(expected.ravel())  # something to compare
    return float((mask == expected)[objects].mean())


@pytest.mark.parametrize('name', ['default', 'sigmoid_savedmodel', 'argmax_tflite'])
def test_onnx_target_is_checked_described_and_refuses_tensorrt_on_cpu(converted, name):
    import onnx

    out, manifest, _ = converted[name]
    onnx_target = manifest['targets']['onnx']
    assert set(manifest['targets']) == {'onnx'}
    assert onnx_target['opset'] == OPSET
    assert onnx_target['check']['passed'] and onnx_target['check']['mask_agreement'] >= 0.9999
    assert "TensorRT's Python API" in manifest['skipped_targets']['tensorrt']
    proto = onnx.load(str(verified_file(out, manifest, 'onnx', 'model')))
    assert proto.opset_import[0].version == OPSET
    carried = json.loads({p.key: p.value for p in proto.metadata_props}[DESCRIPTION_KEY])
    assert carried['class_names'] == manifest['model']['class_names']
    assert carried['output']['type'] == manifest['model']['output']['type']


@pytest.mark.parametrize('name', ['sigmoid_savedmodel', 'argmax_tflite'])
def test_onnxruntime_masks_match_a_direct_run_of_the_source(converted, name):
    out, _, folder = converted[name]
    frame = colour_frame(2)
    expected = reference_mask(OWN[name], folder, frame)
    assert _agreement(_network_mask('onnxruntime', out, frame), expected) >= 0.99


def test_a_tflite_with_ops_onnx_lacks_is_left_out_by_name(tmp_path):
    """MediaPipe's selfie segmenter uses a LiteRT custom op tf2onnx cannot map."""
    folder = tmp_path / 'selfie'
    folder.mkdir()
    shutil.copy(ASSETS / 'selfie_segmentation.tflite', folder / 'model.tflite')
    (folder / 'model.json').write_text(json.dumps(
        {'input': {'dtype': 'float32', 'resize': 'stretch'}, 'output': {'type': 'sigmoid'},
         'class_names': ['background', 'person']}))
    with pytest.raises(OptimizerError, match='Convolution2DTransposeBias'):
        _optimize(str(folder), tmp_path / 'out')


def test_tensorrt_alone_is_refused_with_the_reason(tmp_path):
    config = OptimizerConfig(output_dir=str(tmp_path / 'out'), targets=('tensorrt',))
    with pytest.raises(OptimizerError, match="no GPU|TensorRT's Python API"):
        Optimizer(config, log=lambda line: None).run()
    assert not (tmp_path / 'out' / 'manifest.json').exists()


def test_optimizer_node_refuses_tensorrt_with_the_reason(ros_env, tmp_path):
    result = subprocess.run([sys.executable, '-m', 'jetson_seg.ros.optimizer_node',
                             '--ros-args', '-p', f'output_dir:={tmp_path}',
                             '-p', 'targets:=[tensorrt]'],
                            env=ros_env, capture_output=True, text=True, timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "TensorRT's Python API (the tensorrt module) is not installed" in text, text


def test_missing_providers_fall_away_with_the_reason():
    choice = choose_providers(PROVIDERS, ['AzureExecutionProvider', CPU_EP])
    assert choice.used == [CPU_EP]
    assert set(choice.dropped) == {TENSORRT_EP, CUDA_EP}
    assert all('not in this onnxruntime build' in why for why in choice.dropped.values())
    with pytest.raises(EngineError, match=CUDA_EP):
        choose_providers((CUDA_EP,), [CPU_EP])


def test_engine_on_this_cpu_runs_the_cpu_provider_and_says_so(converted):
    out, manifest, _ = converted['default']
    path = verified_file(out, manifest, 'onnx', 'model')
    said: list[str] = []
    engine = OnnxRuntimeEngine(path, threads=1, log=said.append)
    assert engine.provider == CPU_EP and engine.label == f'onnxruntime/{CPU_EP}/fp32'
    assert len(said) == 2 and all('not used' in line for line in said), said
    with pytest.raises(EngineError, match='TensorRT execution provider'):
        OnnxRuntimeEngine(path, precision='fp16')
    with pytest.raises(EngineError, match='none of onnx_providers'):
        open_model(str(out), 'onnxruntime', onnx_providers=(TENSORRT_EP, CUDA_EP))


def test_tensorrt_provider_caches_engines_in_the_model_folder(tmp_path):
    options = tensorrt_options('fp16', tmp_path)
    cache = Path(options['trt_engine_cache_path'])
    assert cache.is_dir() and cache.parent == tmp_path / TRT_CACHE
    assert cache.name.endswith('-fp16') and options['trt_fp16_enable'] == 'True'
    assert Path(tensorrt_options('fp32', tmp_path)['trt_engine_cache_path']) != cache


def test_trt_cache_key_separates_gpu_tensorrt_and_precision():
    keys = {trt_cache_key(gpu, trt, precision) for gpu in ('NVIDIA Jetson AGX Orin', 'H100')
            for trt in ('8.6.2', '10.3.0') for precision in ('fp16', 'fp32')}
    assert len(keys) == 8
    assert trt_cache_key('NVIDIA Jetson AGX Orin', '10.3.0', 'fp16') == \
        'NVIDIA_Jetson_AGX_Orin-trt10.3.0-fp16'


def test_auto_takes_onnxruntime_when_the_output_has_only_onnx(converted):
    engine, _ = open_model(str(converted['default'][0]), 'auto', threads=1)
    try:
        assert engine.name == 'onnxruntime'
    finally:
        engine.close()


@pytest.mark.parametrize('name', ['default', 'sigmoid_savedmodel'])
def test_node_serves_the_onnx_target_over_dds(converted, name, ros_env):
    out = converted[name][0]
    namespace = f'/onnx_{name}'
    node = NodeProcess({'threads': 1, 'model_path': str(out), 'engine': 'onnxruntime',
                        'mask_resolution': 'network'}, ros_env, namespace=namespace)
    client = NodeClient.on_own_node(f'onnx_client_{name}', namespace=namespace,
                                    outputs=('mask',), node_name=f'{namespace}/segmentation_node')
    try:
        node.wait_for_output('active: listening')
        client.connect()
        if name == 'default':  # the Keras source, frozen and run by TensorFlow
            frame = next(iter(scene_stream(5))).image
            expected = _network_mask('tf', default_model_dir(), frame)
        else:  # the SavedModel run directly, preprocessing written in the test
            frame = colour_frame(1)
            expected = reference_mask(OWN[name], converted[name][2], frame)
        answer = client.request(stamped(image_from_rgb(frame, 'rgb8'), next(STAMPS)))
        mask = np.frombuffer(answer['mask'].data, np.uint8).reshape(
            answer['mask'].height, answer['mask'].width)
        assert _agreement(mask, expected) >= 0.99
        assert client.spin_until(lambda: 'engine' in client.figures(), 10.0)
        assert client.figures()['engine'] == f'onnxruntime/{CPU_EP}/fp32'
        assert f'{TENSORRT_EP} not used' in node.text
    finally:
        client.close()
        assert node.stop() == 0, node.text
