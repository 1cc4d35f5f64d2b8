"""Optimizer: freeze report, checked artefacts, atomic output, clear errors (real TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jetson_seg.optimize.artefacts import read_manifest, verified_file
from jetson_seg.errors import ArtefactError, EngineError
from jetson_seg.model_info import default_model_dir, load_keras
from jetson_seg.model_loader import open_model

TF_BN_OPS = {'Rsqrt', 'FusedBatchNorm', 'FusedBatchNormV3'}


def _optimize(env, *params: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, '-m', 'jetson_seg.ros.optimizer_node', '--ros-args']
    for item in params:
        cmd += ['-p', item]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def artefacts_dir(ros_env, tmp_path_factory):
    out = tmp_path_factory.mktemp('optimized')
    result = _optimize(ros_env, f'output_dir:={out}', 'targets:=[tf,litert,tftrt]',
                       'precision_mode:=FP16', 'check_frames:=4')
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout + result.stderr


def test_freeze_report_shows_nodes_falling_and_batchnorm_folded():
    from jetson_seg.optimize.freeze import freeze_keras_model

    frozen = freeze_keras_model(load_keras(default_model_dir() / 'model.keras'))
    counts = [step.nodes for step in frozen.steps]
    assert counts[-1] < counts[1] * 0.5, frozen.report()
    assert all(b <= a for a, b in zip(counts[1:], counts[2:])), frozen.report()
    final = frozen.steps[-1].op_counts
    assert not TF_BN_OPS & set(final), final
    nodes = {n.name: n for n in frozen.graph_def.node}
    conv_like = {'Conv2D', 'DepthwiseConv2dNative', 'BatchToSpaceND', '_FusedConv2D',
                 '_FusedDepthwiseConv2dNative'}
    for node in frozen.graph_def.node:  # no BN scale left multiplying a convolution's output
        if node.op == 'Mul':
            sources = {nodes[i.split(':')[0]].op for i in node.input}
            assert not sources & conv_like, node.name
    assert '_FusedConv2D' in final  # CPU graph fuses conv + bias + relu


def test_artefacts_are_checked_and_described(artefacts_dir):
    out, log = artefacts_dir
    manifest = read_manifest(out)
    assert set(manifest['targets']) == {'tf', 'litert', 'tftrt'}
    assert 'freeze report' in log and 'check tf' in log
    tf_check = manifest['targets']['tf']['check']
    assert tf_check['passed'] and tf_check['max_abs_diff'] < 1e-4
    for precision, check in manifest['targets']['litert']['check'].items():
        assert check['passed'] and check['mask_agreement'] >= 0.999, precision
    for target in manifest['targets'].values():
        for entry in target['files']:
            assert len(entry['sha256']) == 64
    assert manifest['model']['class_names'] == ['background', 'disc', 'rectangle', 'triangle']


@pytest.mark.parametrize('engine', ['tf', 'litert'])
def test_artefacts_reproduce_source_masks(artefacts_dir, engine):
    from jetson_seg.optimize.optimizer import check_frames

    out, _ = artefacts_dir
    source, _ = open_model('', 'tf', threads=1)
    converted, info = open_model(str(out), engine, threads=1)
    assert converted.name == engine
    frames = check_frames(3, info.input_hw, seed=5)
    a, b = source.infer(frames), converted.infer(frames)
    assert (a.argmax(-1) == b.argmax(-1)).mean() > 0.999


def test_second_run_is_up_to_date_and_force_rebuild_rebuilds(ros_env, artefacts_dir):
    out, _ = artefacts_dir
    before = read_manifest(out)['run']
    again = _optimize(ros_env, f'output_dir:={out}', 'targets:=[tf,litert,tftrt]',
                      'precision_mode:=FP16', 'check_frames:=4')
    assert again.returncode == 0 and 'up to date' in again.stdout + again.stderr
    assert read_manifest(out)['run'] == before


def test_tampered_artefact_is_refused(tmp_path, artefacts_dir):
    import shutil
    out, _ = artefacts_dir
    copy = tmp_path / 'copy'
    shutil.copytree(out, copy)
    manifest = read_manifest(copy)
    path = verified_file(copy, manifest, 'litert', 'fp32')
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match='checksum'):
        open_model(str(copy), 'litert')


def test_killed_runs_leave_previous_output_loadable(ros_env, tmp_path):
    from jetson_seg.tools.stress import kill_optimizer

    report = kill_optimizer(times=3, out=tmp_path, seed=1)
    assert report['all_loadable'] and len(report['kills']) == 3, report
    assert report['killed_mid_run'] >= 1, report


@pytest.mark.parametrize('params,code,fragment', [
    (('targets:=[tf,openvino]',), 2,
     "items must be in ['tf', 'tftrt', 'litert', 'onnx', 'tensorrt']"),
    (('precision_mode:=FP8',), 2, 'precision_mode must be one of'),
    (('minimum_segment_size:=0',), 2, 'minimum_segment_size'),
    (('is_dynamic_op:=false',), 2, 'TF 2.x TF-TRT builds dynamic ops only'),
    (('input_model:=/nonexistent/model.keras',), 1, '/nonexistent/model.keras'),
    (('calibration_bag:=/tmp/x',), 2, 'calibration_bag and calibration_topic go together'),
])
def test_bad_parameters_fail_with_clear_message(ros_env, tmp_path, params, code, fragment):
    result = _optimize(ros_env, f'output_dir:={tmp_path}', *params, timeout=120)
    text = result.stdout + result.stderr
    assert result.returncode == code, text
    assert fragment in text, text
    assert not (tmp_path / 'manifest.json').exists()


def test_manifest_is_json_with_versions(artefacts_dir):
    out, _ = artefacts_dir
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['versions']['tensorflow'].startswith('2.17')
    assert manifest['freeze_steps'][0]['nodes'] > manifest['freeze_steps'][-1]['nodes']
    assert np.isfinite(manifest['timings_s']['freeze'])


@pytest.fixture(scope='module')
def frozen_for_trt():
    from jetson_seg.optimize.freeze import freeze_keras_model
    model = load_keras(default_model_dir() / 'model.keras')
    return model, freeze_keras_model(model, for_cpu=False)


def _trt_nodes(graph_def):
    return [n for n in graph_def.node if n.op == 'TRTEngineOp']


def test_tftrt_rewrite_builds_segments_with_the_given_settings(frozen_for_trt):
    from jetson_seg.optimize.conversion_settings import ConversionSettings
    from jetson_seg.optimize.convert_tftrt import rewrite_for_tensorrt

    _, frozen = frozen_for_trt
    graph, report = rewrite_for_tensorrt(frozen, ConversionSettings(precision_mode='FP16'))
    nodes = _trt_nodes(graph)
    assert len(nodes) == len(report.segments) >= 2
    functions = {f.signature.name for f in graph.library.function}
    for node in nodes:
        assert node.attr['precision_mode'].s == b'FP16'
        assert node.attr['segment_func'].func.name in functions
    assert report.nodes_after < report.nodes_before
    assert report.reasons['SpaceToBatchND'] == 'TF-TRT has no converter for this op type'
    graph32, _ = rewrite_for_tensorrt(frozen, ConversionSettings(precision_mode='FP32'))
    assert {n.attr['precision_mode'].s for n in _trt_nodes(graph32)} == {b'FP32'}


def test_tftrt_rewrite_honours_minimum_segment_size_and_deny_list(frozen_for_trt):
    from jetson_seg.optimize.conversion_settings import ConversionSettings
    from jetson_seg.optimize.convert_tftrt import rewrite_for_tensorrt

    _, frozen = frozen_for_trt
    _, small = rewrite_for_tensorrt(frozen, ConversionSettings(minimum_segment_size=3))
    _, large = rewrite_for_tensorrt(frozen, ConversionSettings(minimum_segment_size=40))
    assert 0 < len(large.segments) < len(small.segments)
    assert all(seg.nodes >= 40 for seg in large.segments)
    denied = ('ConcatV2', 'Relu')
    _, deny = rewrite_for_tensorrt(frozen, ConversionSettings(deny_op_types=denied))
    for seg in deny.segments:
        assert not set(denied) & set(seg.op_counts), seg
    assert deny.reasons['ConcatV2'] == 'denied by deny_op_types'


def test_tftrt_native_segments_match_the_source(frozen_for_trt):
    from jetson_seg.optimize.convert_tftrt import (ConversionSettings, native_segments_graph,
                                                   rewrite_for_tensorrt)
    from jetson_seg.engines.tf_graph import FrozenGraphEngine
    from jetson_seg.optimize.optimizer import check_frames

    model, frozen = frozen_for_trt
    graph, _ = rewrite_for_tensorrt(frozen, ConversionSettings())
    native = native_segments_graph(graph)
    assert not _trt_nodes(native)
    engine = FrozenGraphEngine(native, frozen.input_name, frozen.output_name, frozen.input_hw,
                               frozen.output_channels, threads=1)
    frames = check_frames(2, frozen.input_hw)
    diff = np.abs(engine.infer(frames) - model(frames, training=False).numpy()).max()
    assert diff < 1e-4  # float summation order only: 1.6e-5 seen with the default model


def test_node_refuses_preview_only_tftrt_and_falls_back_when_told(artefacts_dir):
    out, log = artefacts_dir
    assert 'TensorRT engines were NOT built' in log
    manifest = read_manifest(out)
    assert manifest['targets']['tftrt']['engines_built'] is False
    assert manifest['targets']['tftrt']['segments']['segments']
    with pytest.raises(EngineError, match='holds no TensorRT engines'):
        open_model(str(out), 'tftrt')
    notes = []
    engine, _ = open_model(str(out), 'tftrt', allow_fallback=True, log=notes.append)
    assert engine.name in ('litert', 'tf') and 'falling back' in notes[0]


def test_a_second_run_on_the_same_output_is_refused_while_one_holds_it(tmp_path):
    from jetson_seg.optimize.artefacts import exclusive
    from jetson_seg.optimize.optimizer import Optimizer, OptimizerConfig

    out = tmp_path / 'shared'
    run = Optimizer(OptimizerConfig(output_dir=str(out), targets=('tf',)), log=lambda _: None)
    with exclusive(out):
        with pytest.raises(ArtefactError, match='another optimizer run is writing'):
            run.run()
    assert not list(out.glob('run-*'))  # refused before writing anything
    with exclusive(out):  # released on exit, also when the holder raised
        pass


def test_int8_keeps_the_first_operations_float_when_asked():
    """Mixed INT8: the first ops compute in float, the rest in int8, closer to FP32 masks."""
    from ai_edge_litert.interpreter import Interpreter

    from jetson_seg.optimize.convert_litert import convert_to_litert, first_ops
    from jetson_seg.optimize.optimizer import check_frames, compare_outputs

    model = load_keras(default_model_dir() / "model.keras")
    calibration = check_frames(16, (192, 256), seed=5)
    frames = check_frames(8, (192, 256))
    outputs, kinds, files = {}, {}, {}
    for float_ops in (0, 7):
        data = files[float_ops] = convert_to_litert(model, 'INT8', lambda: iter(calibration),
                                                    float_ops)
        interp = Interpreter(model_content=data)
        interp.allocate_tensors()
        dtypes = {t['name']: t['dtype'] for t in interp.get_tensor_details()}
        kinds[float_ops] = [dtypes[name] for name in first_ops(data, 8)]
        runner = interp.get_signature_runner()
        outputs[float_ops] = np.concatenate([next(iter(runner(image=f[None]).values()))
                                             for f in frames])
    assert all(k == np.int8 for k in kinds[0])
    assert all(k == np.float32 for k in kinds[7][:7]) and kinds[7][7] == np.int8
    reference = model.predict_on_batch(frames)
    close = {n: compare_outputs(reference, out, 0.97).class_iou for n, out in outputs.items()}
    assert close[7] > close[0], close
    # the optimizer's search names the float operations from its plain INT8 file: same result
    assert convert_to_litert(model, 'INT8', lambda: iter(calibration), 7,
                             full_int8=files[0]) == files[7]


def test_int8_float_ops_parameter_reaches_the_file_and_the_manifest(ros_env, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from jetson_seg.optimize.convert_litert import first_ops

    out = tmp_path / 'int8'
    result = _optimize(ros_env, f'output_dir:={out}', 'targets:=[litert]',
                       'precision_mode:=INT8', 'int8_float_ops:=3', 'calibration_frames:=8',
                       'check_frames:=4')
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = read_manifest(out)
    target = manifest['targets']['litert']
    assert target['int8_float_ops'] == 3
    assert [t['float_ops'] for t in target['int8_search']] == [3]
    data = verified_file(out, manifest, 'litert', 'int8').read_bytes()
    dtypes = {t['name']: t['dtype'] for t in Interpreter(model_content=data).get_tensor_details()}
    assert [dtypes[name] for name in first_ops(data, 4)] == [np.float32] * 3 + [np.int8]
