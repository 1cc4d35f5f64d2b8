"""Opening models: every problem names the file and what is wrong."""

import json
import shutil

import numpy as np
import pytest

from jetson_seg.errors import EngineError, JetsonSegError, ModelError
from jetson_seg.model_info import (PACKAGED_MODELS, default_model_dir, packaged_model_dir,
                                   read_model_info)
from jetson_seg.model_loader import DEFAULT_OPTIMIZED, open_model, served_role
from jetson_seg.optimize.artefacts import INT8_CLASS_IOU
from jetson_seg.optimize.optimizer import check_frames
from jetson_seg.vision.postprocess import class_ids


@pytest.fixture
def model_copy(tmp_path):
    copy = tmp_path / 'model'
    shutil.copytree(default_model_dir(), copy)
    return copy


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path / 'nowhere')):
        open_model(str(tmp_path / 'nowhere'))


def test_corrupt_keras_file(model_copy):
    (model_copy / 'model.keras').write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(ModelError, match='cannot load Keras model .*model.keras'):
        open_model(str(model_copy), 'tf')


def test_metadata_that_does_not_match_the_model(model_copy):
    meta = json.loads((model_copy / 'model.json').read_text())
    meta['class_names'].append('extra')
    meta['class_colors'].append([1, 2, 3])
    (model_copy / 'model.json').write_text(json.dumps(meta))
    with pytest.raises(ModelError, match='outputs 4 channel.*5 class_names.*model.json'):
        open_model(str(model_copy), 'tf')


def test_invalid_metadata(model_copy):
    (model_copy / 'model.json').write_text('{"class_names": ')
    with pytest.raises(ModelError, match='model.json is not valid JSON'):
        open_model(str(model_copy), 'tf')


def test_keras_model_cannot_be_served_as_tftrt():
    with pytest.raises(EngineError, match='run optimizer_node'):
        open_model('', 'tftrt')  # the shipped output has no tftrt: model.keras is asked


def test_one_base_error_for_every_refusal(tmp_path):
    """Callers catch JetsonSegError alone: model, engine and setting refusals share it."""
    for args in ((str(tmp_path / 'nowhere'),), ('', 'tftrt'), ('', 'no_such_engine')):
        with pytest.raises(JetsonSegError):
            open_model(*args)


@pytest.fixture(scope='module')
def reference():
    """Generated frames and the packaged FP32 LiteRT file's class ids on them."""
    engine, info = open_model('', 'litert', threads=1, precision='fp32')
    frames = check_frames(4, info.input_hw, spec=info.input)
    ids = class_ids(engine.infer(frames), info.output)
    engine.close()
    assert len(np.unique(ids)) == len(info.class_names)  # every class is there to get wrong
    return frames, ids


def _agreement(engine, info, reference) -> float:
    frames, ids = reference
    return float((class_ids(engine.infer(frames), info.output) == ids).mean())


@pytest.mark.parametrize('engine', ['tf', 'litert'])
def test_default_model_opens_with_each_cpu_engine_and_segments_alike(engine, reference):
    opened, info = open_model('', engine, threads=1)
    assert opened.name == engine and info.class_names[0] == 'background'
    assert _agreement(opened, info, reference) >= 0.97  # litert: INT8 served (auto)
    opened.close()


@pytest.mark.parametrize('name', PACKAGED_MODELS)
def test_packaged_optimizer_output_is_current_and_served_without_loss(name):
    """models/<name>/optimized was made by the optimizer from its model.keras + model.json.

    Rerun it when they change (README: "The default model"). auto serves its INT8 file only
    if that keeps the objects (class IoU against FP32), else FP32, and says why. The default
    is served from it with no model_path; another packaged model by naming the folder.
    """
    from jetson_seg.model_loader import default_model_path
    from jetson_seg.optimize.artefacts import read_manifest, source_digest

    model_dir = packaged_model_dir(name)
    optimized = model_dir / DEFAULT_OPTIMIZED
    manifest = read_manifest(optimized)
    assert manifest['model']['source_sha256'] == source_digest(model_dir), \
        f'stale: python -m jetson_seg.ros.optimizer_node (README "The default model") for {name}'
    checks = manifest['targets']['litert']['check']
    assert checks['INT8']['passed'] and checks['INT8']['mask_agreement'] >= 0.99
    assert default_model_path(model_dir=model_dir) == optimized
    said: list[str] = []
    model_path = '' if name == 'default' else str(optimized)
    engine, info = open_model(model_path, 'auto', threads=1, log=said.append)
    int8_keeps_objects = checks['INT8']['class_iou'] >= INT8_CLASS_IOU
    assert engine.label == ('litert/int8' if int8_keeps_objects else 'litert/fp32')
    assert info.path == optimized and (int8_keeps_objects or 'class IoU' in said[0])
    assert info.input_hw == read_model_info(model_dir).input_hw
    engine.close()


@pytest.mark.parametrize('name', PACKAGED_MODELS)
def test_packaged_int8_keeps_the_fewest_float_operations_that_keep_the_objects(name):
    """The optimizer's search, as recorded in the shipped manifest and seen in the file.

    The first trial that reaches INT8_CLASS_IOU ends it; where none does, every cut was tried
    and the best one kept (auto then serves FP32: the test above).
    """
    from ai_edge_litert.interpreter import Interpreter

    from jetson_seg.optimize.artefacts import read_manifest, verified_file
    from jetson_seg.optimize.convert_litert import first_ops
    from jetson_seg.optimize.optimizer import INT8_FLOAT_OPS_TRIED

    optimized = packaged_model_dir(name) / DEFAULT_OPTIMIZED
    manifest = read_manifest(optimized)
    target = manifest['targets']['litert']
    search = target['int8_search']
    tried = [trial['float_ops'] for trial in search]
    assert tried == list(INT8_FLOAT_OPS_TRIED[:len(tried)])
    ious = [trial['class_iou'] for trial in search]
    if ious[-1] >= INT8_CLASS_IOU:
        chosen = search[-1]
        assert INT8_CLASS_IOU > max(ious[:-1], default=0.0)
    else:
        assert tried == list(INT8_FLOAT_OPS_TRIED)
        chosen = search[ious.index(max(ious))]
    assert chosen['float_ops'] == target['int8_float_ops']
    assert target['check']['INT8']['class_iou'] == pytest.approx(chosen['class_iou'], abs=1e-4)
    data = verified_file(optimized, manifest, 'litert', 'int8').read_bytes()
    interp = Interpreter(model_content=data)
    dtypes = {t['name']: t['dtype'] for t in interp.get_tensor_details()}
    kinds = [dtypes[tensor] for tensor in first_ops(data, chosen['float_ops'] + 1)]
    assert all(k == np.float32 for k in kinds[:-1]) and kinds[-1] == np.int8


@pytest.mark.parametrize('class_iou, served', [(0.995, 'int8'), (0.91, 'fp32')])
def test_auto_serves_int8_only_when_it_keeps_the_objects(class_iou, served, tmp_path):
    target = {'files': [{'role': 'fp32'}, {'role': 'int8'}],
              'check': {'INT8': {'mask_agreement': 0.997, 'class_iou': class_iou}}}
    said: list[str] = []
    assert served_role(tmp_path, target, 'auto', said.append) == served
    assert served_role(tmp_path, target, 'int8') == 'int8'  # asked for: served anyway
    assert bool(said) == (served == 'fp32')


@pytest.mark.parametrize('precision, label', [('fp32', 'litert/fp32'), ('int8', 'litert/int8')])
def test_precision_picks_the_artefact(precision, label, reference):
    engine, info = open_model('', 'litert', threads=1, precision=precision)
    assert engine.label == label
    agreement = _agreement(engine, info, reference)
    assert agreement == 1.0 if precision == 'fp32' else 0.97 <= agreement < 1.0
    engine.close()


def test_precisions_that_were_not_made_are_refused_with_the_fix(model_copy):
    with pytest.raises(EngineError, match=r"no fp16 LiteRT file \(it has \['fp32', 'int8'\]\)"
                                          r".*precision_mode:=FP16"):
        open_model('', 'litert', precision='fp16')
    with pytest.raises(EngineError, match='converted at start-up in FP32.*INT8'):
        open_model(str(model_copy), 'litert', precision='int8')


def test_a_stale_packaged_output_is_ignored_with_a_warning(model_copy):
    from jetson_seg.model_loader import default_model_path

    assert default_model_path(model_dir=model_copy) == model_copy / 'optimized'
    meta = json.loads((model_copy / 'model.json').read_text())
    meta['class_colors'][1] = [1, 2, 3]
    (model_copy / 'model.json').write_text(json.dumps(meta))
    warnings: list[str] = []
    assert default_model_path(warnings.append, model_copy) == model_copy
    assert 'stale' in warnings[0]


LEAN_PROBE = """
import sys
import numpy as np
import jetson_seg.ros.segmentation_node  # everything the node imports
from jetson_seg.engines.gpu import configure_gpu_memory
from jetson_seg.model_loader import open_model
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted
configure_gpu_memory(0)
engine, info = open_model(sys.argv[1], 'auto', threads=1)
result = SegmentationPipeline(engine, info, PipelineConfig()).run(
    DecodedImage(np.full((480, 640, 3), 90, np.uint8), 'rgb'), Wanted())
assert result.mask.shape == (480, 640)
print(engine.label, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))
"""


@pytest.mark.parametrize('model', ['', 'small_objects', 'selfie'])
def test_serving_litert_never_imports_tensorflow(model, tmp_path):
    """The packaged models (their shipped outputs) and a bare .tflite, as the node opens them."""
    import subprocess
    import sys

    path = ''
    if model == 'small_objects':
        path = str(packaged_model_dir(model) / DEFAULT_OPTIMIZED)
    elif model:
        from own_models import KINDS, write_model
        tflite = next(kind for kind in KINDS if kind.name == 'argmax_tflite')
        path = str(write_model(tflite, tmp_path / 'tflite'))
    out = subprocess.run([sys.executable, '-c', LEAN_PROBE, path], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-2].startswith('litert/') and out[-1] == '[]', out
