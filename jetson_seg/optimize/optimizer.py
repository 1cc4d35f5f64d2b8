"""Freeze, optimize and convert a trained model into checked artefacts a node can load.

Every artefact is compared with the source model on generated frames before it is published;
any mismatch aborts the run and leaves the previous output in place (see artefacts.py).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from jetson_seg.model_info import KERAS_FILE, default_model_dir, load_keras, read_model_info
from jetson_seg.optimize import artefacts
from jetson_seg.optimize.convert_tftrt import TrtSettings
from jetson_seg.errors import JetsonSegError

#: What the optimizer can produce (the optimizer node's `targets` parameter).
TARGETS = ('tf', 'tftrt', 'litert')

#: Minimum fraction of pixels whose class must agree with the source model, per artefact kind.
MASK_AGREEMENT = {'tf': 0.9999, 'tftrt': 0.9999, 'litert/FP32': 0.9999, 'litert/FP16': 0.999,
                  'litert/INT8': 0.97, 'tftrt/FP32': 0.9999, 'tftrt/FP16': 0.999,
                  'tftrt/INT8': 0.97}


class OptimizerError(JetsonSegError):
    """The run cannot continue; the message says what to do."""


def default_output_dir() -> str:
    """Per-user artefact location: $XDG_DATA_HOME/jetson_seg/models (~/.local/share/...)."""
    base = os.environ.get('XDG_DATA_HOME') or \
        os.path.join(os.path.expanduser('~'), '.local', 'share')
    return os.path.join(base, 'jetson_seg', 'models')


@dataclass(frozen=True)
class OptimizerConfig:
    """Everything the optimizer node takes as ROS parameters."""

    input_model: str = ''
    output_dir: str = field(default_factory=default_output_dir)
    targets: tuple[str, ...] = ('tf', 'tftrt', 'litert')
    trt: TrtSettings = TrtSettings()
    build_engines: bool = True
    build_batch_sizes: tuple[int, ...] = (1,)
    calibration_bag: str = ''
    calibration_topic: str = ''
    calibration_images: str = ''
    calibration_frames: int = 32
    check_frames: int = 8
    force_rebuild: bool = False


@dataclass
class CheckResult:
    """How closely an artefact reproduces the source model on the check frames."""

    max_abs_diff: float
    mask_agreement: float
    frames: int
    passed: bool
    note: str = ''


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, threshold: float,
                    note: str = '') -> CheckResult:
    """Max abs probability difference and fraction of pixels with the same class."""
    if candidate.shape != reference.shape:
        return CheckResult(float('inf'), 0.0, len(reference), False,
                           f'output shape {candidate.shape} != {reference.shape}')
    diff = float(np.abs(candidate.astype(np.float64) - reference).max())
    agree = float((candidate.argmax(-1) == reference.argmax(-1)).mean())
    passed = bool(agree >= threshold and np.isfinite(diff))
    return CheckResult(diff, agree, len(reference), passed, note)


CHECK_SEED, CALIBRATION_SEED = 99, 199


def check_frames(count: int, input_hw: tuple[int, int], seed: int = CHECK_SEED) -> np.ndarray:
    """Generated scenes shrunk to the network input: what the model will really see."""
    from jetson_seg.training.scenes import scene_stream
    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.vision.preprocess import to_network_input

    stream = scene_stream(seed)
    frames = np.zeros((count, *input_hw, 3), np.uint8)
    for i in range(count):
        to_network_input(DecodedImage(next(stream).image, 'rgb'), input_hw, frames[i])
    return frames


def _source_hash(path: Path) -> str:
    if path.is_file():
        return artefacts.sha256_of(path)
    import hashlib
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob('*') if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode())
        digest.update(artefacts.sha256_of(item).encode())
    return digest.hexdigest()


def _settings_key(config: OptimizerConfig) -> dict:
    keep = asdict(config)
    for key in ('output_dir', 'force_rebuild', 'input_model'):
        keep.pop(key)
    keep['targets'] = sorted(config.targets)
    return json.loads(json.dumps(keep))


class Optimizer:
    """One optimizer run: load, freeze, convert each target, check, publish."""

    def __init__(self, config: OptimizerConfig, log: Callable[[str], None] = print,
                 calibration: Callable[[tuple[int, int]], Iterable[np.ndarray]] | None = None
                 ) -> None:
        self.config = config
        self.log = log
        self.calibration = calibration
        self.timings: dict[str, float] = {}

    def _calibration_frames(self, input_hw: tuple[int, int]) -> Iterable[np.ndarray]:
        """INT8 calibration data: the user's bag or images, else generated scenes.

        The generated ones are not the check frames: calibrating on the frames the check uses
        would flatter the check.
        """
        if self.calibration is not None:
            return self.calibration(input_hw)
        return iter(check_frames(self.config.calibration_frames, input_hw, CALIBRATION_SEED))

    def _timed(self, name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.timings[name] = round(time.perf_counter() - start, 2)
        return result

    def run(self) -> dict:
        """Execute the run; returns the published manifest (or the current one if up to date)."""
        cfg = self.config
        source = Path(cfg.input_model).expanduser() if cfg.input_model else \
            default_model_dir() / KERAS_FILE
        if source.is_dir() and (source / KERAS_FILE).is_file():
            source = source / KERAS_FILE
        if not source.is_file():
            raise OptimizerError(f'input_model {source} is not a Keras .keras file; pass '
                                 f'-p input_model:=<path to model.keras>')
        output = Path(cfg.output_dir).expanduser()
        with artefacts.exclusive(output):
            return self._build(source, output)

    def _build(self, source: Path, output: Path) -> dict:
        """Everything after the inputs are known, with `output` locked against other runs."""
        from jetson_seg.optimize.freeze import freeze_keras_model

        cfg = self.config
        source_hash = _source_hash(source)
        settings = _settings_key(cfg)
        if not cfg.force_rebuild:
            current = self._up_to_date(output, source_hash, settings)
            if current is not None:
                self.log(f'{output} is up to date for {source} (force_rebuild:=true to redo)')
                return current
        info = read_model_info(source.parent)
        model = self._timed('load', load_keras, source)
        frozen_cpu = self._timed('freeze', freeze_keras_model, model, True)
        self.log('freeze report (node counts per step):\n' + frozen_cpu.report())
        frames = check_frames(cfg.check_frames, frozen_cpu.input_hw)
        reference = model(frames, training=False).numpy()

        artefacts.remove_stale_runs(output, keep=artefacts.current_run(output))
        run_dir = artefacts.new_run_dir(output)
        targets: dict[str, dict] = {}
        for target in TARGETS:
            if target not in cfg.targets:
                continue
            convert = {'tf': self._target_tf, 'litert': self._target_litert,
                       'tftrt': self._target_tftrt}[target]
            targets[target] = self._timed(f'target {target}', convert, model, frozen_cpu,
                                          frames, reference, run_dir)
        manifest = {
            'model': {'source': str(source), 'source_sha256': source_hash,
                      **info.description()},
            'settings': settings,
            'freeze_steps': [asdict(step) for step in frozen_cpu.steps],
            'targets': targets,
            'versions': _versions(),
            'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'timings_s': self.timings,
        }
        artefacts.publish(output, run_dir, manifest)
        self.log(f'published {sorted(targets)} to {output}')
        return artefacts.read_manifest(output)

    def _up_to_date(self, output: Path, source_hash: str, settings: dict) -> dict | None:
        try:
            manifest = artefacts.read_manifest(output)
        except Exception:  # any unreadable manifest just means: rebuild
            return None
        if manifest['model'].get('source_sha256') != source_hash or \
                manifest.get('settings') != settings:
            return None
        try:
            for name, target in manifest['targets'].items():
                for entry in target.get('files', []):
                    artefacts.verified_file(output, manifest, name, entry['role'])
        except Exception:
            return None
        return manifest

    def _check(self, kind: str, infer: Callable[[np.ndarray], np.ndarray], frames: np.ndarray,
               reference: np.ndarray, note: str = '') -> dict:
        out = np.concatenate([infer(frames[i:i + 1]) for i in range(len(frames))])
        result = compare_outputs(reference, out, MASK_AGREEMENT[kind], note)
        self.log(f'check {kind}: max |diff| {result.max_abs_diff:.2e}, mask agreement '
                 f'{result.mask_agreement:.5f} -> {"ok" if result.passed else "FAILED"}')
        if not result.passed:
            raise OptimizerError(f'{kind} artefact does not reproduce the source model '
                                 f'(agreement {result.mask_agreement:.4f} < '
                                 f'{MASK_AGREEMENT[kind]}, max diff {result.max_abs_diff:.3g});'
                                 f' nothing was published')
        return asdict(result)

    def _target_tf(self, model, frozen, frames, reference, run_dir: Path) -> dict:
        from jetson_seg.engines.tf_graph import FrozenGraphEngine

        path = run_dir / 'tf' / 'model.pb'
        path.parent.mkdir(parents=True)
        path.write_bytes(frozen.graph_def.SerializeToString())
        engine = FrozenGraphEngine.from_frozen(frozen, threads=1)
        check = self._check('tf', engine.infer, frames, reference)
        engine.close()
        return {'files': [{'role': 'graph', 'path': 'tf/model.pb'}],
                'input_tensor': frozen.input_name, 'output_tensor': frozen.output_name,
                'nodes': len(frozen.graph_def.node), 'check': check}

    def _target_litert(self, model, frozen, frames, reference, run_dir: Path) -> dict:
        from jetson_seg.optimize.convert_litert import convert_to_litert
        from jetson_seg.engines.litert import LiteRtEngine

        precisions = ['FP32']
        if self.config.trt.precision_mode in ('FP16', 'INT8'):
            precisions.append(self.config.trt.precision_mode)
        files, checks = [], {}
        (run_dir / 'litert').mkdir(parents=True)
        for precision in precisions:
            data = convert_to_litert(model, precision,
                                     lambda: self._calibration_frames(frozen.input_hw))
            rel = f'litert/model_{precision.lower()}.tflite'
            (run_dir / rel).write_bytes(data)
            engine = LiteRtEngine(run_dir / rel, threads=1)
            checks[precision] = self._check(f'litert/{precision}', engine.infer, frames,
                                            reference)
            files.append({'role': precision.lower(), 'path': rel, 'bytes': len(data)})
        return {'files': files, 'check': checks}

    def _target_tftrt(self, model, frozen_cpu, frames, reference, run_dir: Path) -> dict:
        from jetson_seg.engines.gpu import tensorrt_available
        from jetson_seg.engines.tf_graph import FrozenGraphEngine
        from jetson_seg.optimize.convert_tftrt import native_segments_graph, rewrite_for_tensorrt
        from jetson_seg.optimize.freeze import freeze_keras_model

        settings = self.config.trt
        if tensorrt_available():
            return self._target_tftrt_gpu(model, frames, reference, run_dir)
        frozen = freeze_keras_model(model, for_cpu=False)  # no _FusedConv2D: TF-TRT-convertible
        rewritten, report = rewrite_for_tensorrt(frozen, settings)
        self.log(report.text())
        self.log('TensorRT engines were NOT built: no GPU/TensorRT on this machine. The rewrite '
                 'above is a preview of the segments TF-TRT would build with these settings.')
        native = native_segments_graph(rewritten)
        engine = FrozenGraphEngine(native, frozen.input_name, frozen.output_name,
                                   frozen.input_hw, frozen.output_channels, threads=1)
        check = self._check('tftrt', engine.infer, frames, reference,
                            note='TRTEngineOps replaced by their native TF segments')
        engine.close()
        path = run_dir / 'tftrt' / 'rewritten_graph.pb'
        path.parent.mkdir(parents=True)
        path.write_bytes(rewritten.SerializeToString())
        return {'files': [{'role': 'rewritten_graph', 'path': 'tftrt/rewritten_graph.pb'}],
                'engines_built': False, 'loadable': False,
                'reason': 'no GPU/TensorRT on the converting machine: segment preview only',
                'settings': asdict(settings), 'segments': report.as_dict(), 'check': check}

    def _target_tftrt_gpu(self, model, frames, reference, run_dir: Path) -> dict:
        """Convert and pre-build engines on this GPU (not exercised in CI: no GPU there)."""
        from jetson_seg.optimize.convert_tftrt import convert_with_tensorrt
        from jetson_seg.engines.gpu import gpu_and_tensorrt
        from jetson_seg.engines.tftrt import TfTrtEngine

        cfg = self.config
        out = run_dir / 'tftrt' / 'saved_model'
        convert_with_tensorrt(model, cfg.trt, out, cfg.build_batch_sizes, cfg.build_engines,
                              lambda: self._calibration_frames(frames.shape[1:3]))
        engine = TfTrtEngine(out, frames.shape[1:3], reference.shape[-1])
        check = self._check(f'tftrt/{cfg.trt.precision_mode}', engine.infer, frames, reference)
        gpu_name, trt_version = gpu_and_tensorrt()
        return {'files': [{'role': 'saved_model', 'path': 'tftrt/saved_model/saved_model.pb'}],
                'engines_built': cfg.build_engines, 'loadable': True, 'gpu_name': gpu_name,
                'tensorrt': trt_version, 'settings': asdict(cfg.trt), 'check': check}


def _versions() -> dict:
    import tensorflow as tf

    from jetson_seg.engines.gpu import tensorrt_available
    gpus = tf.config.list_physical_devices('GPU')
    return {'tensorflow': tf.__version__, 'python': platform.python_version(),
            'machine': platform.machine(), 'tensorrt_available': tensorrt_available(),
            'gpus': [g.name for g in gpus]}
