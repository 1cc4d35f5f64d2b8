"""A model is a program: the malicious model zoo is refused with trust off and runs with it on.

Each crafted model writes a marker file if any of its code runs. With trust_model off it must
be refused by the node's and the optimizer's entry points, naming the layer, op or function, and
write nothing; with trust on the same model must really run (the marker appears), which shows
the zoo holds real attacks, except the ones the pinned Keras refuses itself even when trusted
(a class or function of a module outside Keras: Keras 3.6.0 ran them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from malicious_models import MARKER, ZOO, Crafted, _flex_tflite, build_zoo, copy_output, sha256
from ros_harness import NodeProcess
from jetson_seg.errors import ArtefactError, ModelError
from jetson_seg.model_info import PACKAGED_MODELS, default_model_dir, packaged_model_dir
from jetson_seg.model_loader import open_model
from jetson_seg.model_trust import (check_model_file, check_tflite, keras_config_problem,
                                    tflite_custom_ops)
from jetson_seg.optimize.sources import ModelSource

SERVED = [c for c in ZOO if c.family != 'onnx']  # ONNX sources arrive with issue 23
DEFAULT_OUTPUT = default_model_dir() / 'optimized'


@pytest.fixture(scope='module')
def zoo(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp('zoo')
    sys.path.insert(0, str(root))  # the payload module an attacker's config names
    try:
        yield build_zoo(root)
    finally:
        sys.path.remove(str(root))


@pytest.fixture
def marker_env(monkeypatch):
    """Point the payload module's marker at the model under test."""
    def point(folder: Path) -> Path:
        monkeypatch.setenv('ZOO_MARKER', str(folder / MARKER))
        return folder / MARKER
    return point


def _model_file(folder: Path) -> tuple[Path, str]:
    for name, fmt in (('model.keras', 'keras'), ('model.h5', 'h5'),
                      ('saved_model.pb', 'saved_model'), ('model.tflite', 'tflite'),
                      ('model.onnx', 'onnx')):
        if (folder / name).is_file():
            return folder / name, fmt
    raise AssertionError(f'no model in {folder}')


@pytest.mark.parametrize('crafted', SERVED, ids=[c.name for c in SERVED])
def test_node_and_optimizer_refuse_the_crafted_model_and_nothing_runs(
        crafted: Crafted, zoo, marker_env):
    folder = zoo[crafted.name]
    marker = marker_env(folder)
    for opener in (lambda: open_model(str(folder), 'auto', threads=1),
                   lambda: ModelSource.open(folder)):
        with pytest.raises(ModelError, match='trust_model:=true') as refused:
            opener()
        assert re.search(crafted.names, str(refused.value)), str(refused.value)
        assert str(folder) in str(refused.value)  # where
    assert not marker.exists()


@pytest.mark.parametrize('crafted', [c for c in ZOO if c.family == 'onnx'],
                         ids=[c.name for c in ZOO if c.family == 'onnx'])
def test_crafted_onnx_files_are_refused_naming_the_node(crafted: Crafted, zoo):
    model_file, fmt = _model_file(zoo[crafted.name])
    with pytest.raises(ModelError) as refused:
        check_model_file(model_file, fmt, trust=False)
    assert re.search(crafted.names, str(refused.value)), str(refused.value)


def test_onnx_external_data_is_confined_even_when_trusted(zoo):
    model_file, _ = _model_file(zoo['onnx_external_data_outside'])
    with pytest.raises(ModelError, match='outside the model folder'):
        check_model_file(model_file, 'onnx', trust=True)
    check_model_file(_model_file(zoo['onnx_custom_domain'])[0], 'onnx', trust=True)


RUN_WHEN_TRUSTED = [c for c in SERVED if c.runs_when_trusted and not c.keras_blocks]
KERAS_BLOCKS = [c for c in SERVED if c.keras_blocks]


@pytest.mark.parametrize('crafted', RUN_WHEN_TRUSTED, ids=[c.name for c in RUN_WHEN_TRUSTED])
def test_the_same_crafted_model_runs_its_code_when_trusted(crafted: Crafted, zoo, marker_env):
    """Proof that the zoo is real: trusted, each model's code runs (and may then fail)."""
    folder = zoo[crafted.name]
    marker = marker_env(folder)
    marker.unlink(missing_ok=True)
    engine = 'litert' if crafted.family == 'tflite' else 'tf'
    try:
        opened, info = open_model(str(folder), engine, threads=1, trust=True)
        opened.infer(np.zeros((1, *opened.input_hw, 3), opened.input_dtype))
        opened.close()
    except Exception:  # noqa: BLE001 - a model whose code ran may then fail in any way
        pass
    assert marker.exists(), crafted.name


@pytest.mark.parametrize('crafted', KERAS_BLOCKS, ids=[c.name for c in KERAS_BLOCKS])
def test_keras_itself_refuses_a_foreign_module_even_when_trusted(crafted: Crafted, zoo,
                                                                 marker_env):
    """The pinned Keras imports only its own modules that a config names, safe_mode or not.

    Keras 3.6.0 ran these (CVE-2025-1550 and its disguises); with trust off the allow-list
    refuses them before Keras sees them (the test above), so this only pins down that trust
    does not bring them back.
    """
    folder = zoo[crafted.name]
    marker = marker_env(folder)
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelError, match='Could not locate|not a KerasSaveable'):
        open_model(str(folder), 'tf', threads=1, trust=True)
    assert not marker.exists(), crafted.name


# --- the allow-lists in detail -------------------------------------------------------------------

def _functional(*layers: dict) -> dict:
    return {'module': 'keras.src.models.functional', 'class_name': 'Functional',
            'registered_name': 'Functional',
            'config': {'name': 'm', 'layers': list(layers)}}


def _conv(**changes) -> dict:
    layer = {'module': 'keras.layers', 'class_name': 'Conv2D', 'registered_name': None,
             'config': {'name': 'conv', 'activation': 'relu',
                        'kernel_initializer': {'module': 'keras.initializers',
                                               'class_name': 'GlorotUniform', 'config': {}}}}
    layer.update(changes)
    return layer


def test_keras_allow_list_names_the_layer_and_what_is_wrong():
    assert keras_config_problem(_functional(_conv())) is None
    assert 'module' in keras_config_problem(_functional(_conv(module='os')))
    assert 'registered as' in keras_config_problem(
        _functional(_conv(registered_name='Lambda')))
    problem = keras_config_problem(_functional(_conv(class_name='TFSMLayer')))
    assert "'conv'" in problem and 'TFSMLayer' in problem
    get_file = _conv()
    get_file['config']['activation'] = {'module': 'keras.utils', 'class_name': 'function',
                                        'config': 'get_file', 'registered_name': 'function'}
    assert 'get_file' in keras_config_problem(_functional(get_file))
    builtin = _conv()
    builtin['config']['activation'] = {'module': 'keras.activations', 'class_name': 'function',
                                       'config': 'relu', 'registered_name': 'function'}
    assert keras_config_problem(_functional(builtin)) is None
    nested = _functional(_conv(class_name='Custom'))  # a model inside a model
    assert 'Custom' in keras_config_problem(_functional(nested))
    compiled = {**_functional(_conv()), 'compile_config': {'loss': {
        'module': 'mylosses', 'class_name': 'Focal', 'config': {}}}}
    assert keras_config_problem(compiled) is None  # loaded with compile=False: never built


@pytest.mark.parametrize('name', PACKAGED_MODELS)
def test_models_the_package_serves_pass_every_check(name):
    model_dir = packaged_model_dir(name)
    check_model_file(model_dir / 'model.keras', 'keras', trust=False)
    served = sorted((model_dir / 'optimized').rglob('*.tflite'))
    assert [f.name for f in served] == ['model_fp32.tflite', 'model_int8.tflite']
    for tflite in served:
        check_tflite(tflite, trust=False)
        assert tflite_custom_ops(tflite.read_bytes()) == []


def test_a_pretrained_tflite_with_native_custom_ops_passes():
    """MediaPipe's segmenter uses a custom op XNNPACK implements itself: data, not code."""
    selfie = Path(sys.prefix) / 'share' / 'jetson_seg' / 'test_assets' / \
        'selfie_segmentation.tflite'
    assert tflite_custom_ops(selfie.read_bytes()) == ['Convolution2DTransposeBias']
    check_tflite(selfie, trust=False)


def test_a_file_that_is_not_a_tflite_model_is_refused(tmp_path):
    bogus = tmp_path / 'model.tflite'
    bogus.write_bytes(b'\x00' * 64)
    with pytest.raises(ModelError, match='not a TFLite flatbuffer'):
        check_tflite(bogus, trust=False)


# --- optimizer outputs ---------------------------------------------------------------------------

def _tamper(tmp_path: Path) -> tuple[Path, dict, Path]:
    out = tmp_path / 'output'
    manifest = copy_output(DEFAULT_OUTPUT, out)
    return out, manifest, out / manifest['run']


def _write_manifest(out: Path, manifest: dict) -> None:
    (out / 'manifest.json').write_text(json.dumps(manifest))


def test_an_output_made_from_a_trusted_source_needs_trust(tmp_path):
    out, manifest, _ = _tamper(tmp_path)
    manifest['model']['trusted_source'] = True
    _write_manifest(out, manifest)
    with pytest.raises(ModelError, match='trusted with trust_model:=true'):
        open_model(str(out), 'litert', threads=1)
    engine, _ = open_model(str(out), 'litert', threads=1, trust=True)
    engine.close()


def test_the_optimizer_records_a_trusted_source_and_the_node_then_needs_trust(tmp_path):
    from own_models import KINDS, write_model

    from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig

    kind = next(k for k in KINDS if k.fmt == 'keras')
    write_model(kind, tmp_path / 'model')
    for trust in (False, True):
        out = tmp_path / f'out_{trust}'
        manifest = Optimizer(OptimizerConfig(
            input_model=str(tmp_path / 'model'), output_dir=str(out), targets=('litert',),
            check_frames=2, trust_model=trust), log=lambda _: None).run()
        assert manifest['model']['trusted_source'] is trust
        if trust:
            with pytest.raises(ModelError, match='trusted with trust_model:=true'):
                open_model(str(out), 'litert', threads=1)
        engine, _ = open_model(str(out), 'litert', threads=1, trust=trust)
        engine.close()


def test_a_crafted_output_graph_is_checked_like_a_source(tmp_path, monkeypatch):
    """Anyone can write a manifest and its checksums: the files are checked themselves."""
    import tensorflow as tf

    out, manifest, run = _tamper(tmp_path)
    marker = tmp_path / MARKER

    @tf.function(input_signature=[tf.TensorSpec((None, 192, 256, 3), tf.uint8, name='image')])
    def serve(image):
        with tf.control_dependencies([tf.io.write_file(str(marker), 'ran')]):
            scores = tf.zeros(tf.concat([tf.shape(image)[:3], [4]], 0))
        return tf.identity(scores, name='scores')
    graph_def = serve.get_concrete_function().graph.as_graph_def()
    (run / 'tf').mkdir()
    (run / 'tf' / 'model.pb').write_bytes(graph_def.SerializeToString())
    output = next(n.name for n in graph_def.node if n.name.startswith('scores'))
    manifest['targets']['tf'] = {'input_tensor': 'image:0', 'output_tensor': f'{output}:0',
                                 'files': [{'role': 'graph', 'path': 'tf/model.pb',
                                            'sha256': sha256(run / 'tf' / 'model.pb')}]}
    _write_manifest(out, manifest)
    with pytest.raises(ModelError, match="'WriteFile'"):
        open_model(str(out), 'tf', threads=1)
    assert not marker.exists()
    engine, _ = open_model(str(out), 'tf', threads=1, trust=True)
    engine.infer(np.zeros((1, 192, 256, 3), np.uint8))
    engine.close()
    assert marker.exists()


def test_a_crafted_output_tflite_with_flex_ops_is_refused(tmp_path):
    out, manifest, run = _tamper(tmp_path)
    flex = run / 'litert' / 'model_fp32.tflite'
    flex.write_bytes(_flex_tflite(str(tmp_path / MARKER)))
    for entry in manifest['targets']['litert']['files']:
        if entry['role'] == 'fp32':
            entry['sha256'] = sha256(flex)
    _write_manifest(out, manifest)
    with pytest.raises(ModelError, match='FlexWriteFile'):
        open_model(str(out), 'litert', threads=1, precision='fp32')


def test_a_manifest_cannot_point_outside_its_run_folder(tmp_path):
    out, manifest, run = _tamper(tmp_path)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    shutil.copy(run / 'litert' / 'model_fp32.tflite', elsewhere / 'model.tflite')
    for entry in manifest['targets']['litert']['files']:
        if entry['role'] == 'fp32':
            entry['path'] = '../../elsewhere/model.tflite'
            entry['sha256'] = sha256(elsewhere / 'model.tflite')
    _write_manifest(out, manifest)
    with pytest.raises(ArtefactError, match='outside its run folder'):
        open_model(str(out), 'litert', threads=1, precision='fp32')
    manifest['run'] = '..'
    _write_manifest(out, manifest)
    with pytest.raises(ArtefactError, match='outside its run folder'):
        open_model(str(out), 'litert', threads=1, precision='fp32')


# --- over DDS -----------------------------------------------------------------------------------

def test_node_refuses_a_crafted_model_and_serves_it_only_when_trusted(zoo, ros_env):
    folder = zoo['keras_bytecode_lambda']  # one that the pinned Keras runs when trusted
    env = {**ros_env, 'ZOO_MARKER': str(folder / MARKER),
           'PYTHONPATH': os.pathsep.join([str(folder.parent), ros_env.get('PYTHONPATH', '')])}
    (folder / MARKER).unlink(missing_ok=True)
    node = NodeProcess({'model_path': str(folder), 'engine': 'tf'}, env,
                       namespace='/zoo_untrusted')
    try:
        node.wait_for_output('configure failed')
        assert "layer 'bytecode' is 'Lambda'" in node.text
        assert not (folder / MARKER).exists()
    finally:
        node.stop()
    node = NodeProcess({'model_path': str(folder), 'engine': 'tf', 'trust_model': True}, env,
                       namespace='/zoo_trusted')
    try:
        node.wait_for_output('active: listening')
        assert (folder / MARKER).exists()
    finally:
        assert node.stop() == 0, node.text
