"""Freeze, optimize and convert a trained model into checked artefacts a node can load.

Every artefact is compared with the source model, run by its own runtime, on the user's frames
(check_bag/check_images) or generated ones before it is published; any mismatch aborts the run
and leaves the previous output in place (see artefacts.py). Sources of every format the node
serves are taken (sources.py); a target a format cannot give is left out with the reason.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from jetson_seg.model_info import InputSpec, ModelInfo, OutputSpec, default_model_dir
from jetson_seg.optimize import artefacts
from jetson_seg.optimize.calibration import user_images
from jetson_seg.optimize.sources import ModelSource
from jetson_seg.vision.image_conversion import DecodedImage
from jetson_seg.vision.postprocess import class_ids
from jetson_seg.vision.preprocess import NetworkInput
from jetson_seg.optimize.conversion_settings import ConversionSettings
from jetson_seg.errors import JetsonSegError, TargetUnavailable

#: What the optimizer can produce (the optimizer node's `targets` parameter), in build order:
#: tensorrt is built from the onnx target's file.
TARGETS = ('tf', 'tftrt', 'litert', 'onnx', 'tensorrt')
#: What a run makes when `targets` is not given.
DEFAULT_TARGETS = ('tf', 'tftrt', 'litert')

#: Leading float operations the INT8 search tries, in order (int8_float_ops = -1).
INT8_FLOAT_OPS_TRIED = (0, 1, 2, 3, 5, 8, 13)

#: Minimum fraction of pixels whose class must agree with the source model, per artefact kind.
MASK_AGREEMENT = {'tf': 0.9999, 'tftrt': 0.9999, 'litert/FP32': 0.9999, 'litert/FP16': 0.999,
                  'litert/INT8': 0.97, 'tftrt/FP32': 0.9999, 'tftrt/FP16': 0.999,
                  'tftrt/INT8': 0.97, 'onnx': 0.9999, 'onnx/INT8': 0.97,
                  'tensorrt/FP32': 0.9999,
                  'tensorrt/FP16': 0.999, 'tensorrt/INT8': 0.97}


class OptimizerError(JetsonSegError):
    """The run cannot continue; the message says what to do."""


class RunStopped(JetsonSegError):
    """A stop was asked for (SIGINT/SIGTERM): the run ended between two steps, unpublished."""

    def __init__(self, signal_name: str, step: str, output: Path) -> None:
        self.signal_name, self.step = signal_name, step
        current = artefacts.current_run(output)
        kept = f'{output} still serves {current}' if current else f'nothing was in {output}'
        super().__init__(f'stopped by {signal_name} before step {step!r}: nothing published, '
                         f'{kept}')


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
    targets: tuple[str, ...] = DEFAULT_TARGETS
    conversion: ConversionSettings = ConversionSettings()
    build_engines: bool = True
    build_batch_sizes: tuple[int, ...] = (1,)
    calibration_bag: str = ''
    calibration_topic: str = ''
    calibration_images: str = ''
    calibration_frames: int = 32
    check_bag: str = ''
    check_topic: str = ''
    check_images: str = ''
    check_frames: int = 8
    #: INT8 LiteRT: operations at the start of the network kept float; -1 = search
    int8_float_ops: int = -1
    force_rebuild: bool = False
    trust_model: bool = False


@dataclass
class CheckResult:
    """How closely an artefact reproduces the source model on the check frames."""

    max_abs_diff: float
    mask_agreement: float
    frames: int
    passed: bool
    note: str = ''
    #: Mean over classes of the IoU between the artefact's and the source's class masks: pixel
    #: agreement is mostly background, this says how much of each object survives.
    class_iou: float = 1.0


def _outputs(engine, frames: np.ndarray) -> np.ndarray:
    """`engine`'s outputs for `frames`, one frame a call (as the node runs); closed after."""
    try:
        return np.concatenate([engine.infer(frames[i:i + 1]) for i in range(len(frames))])
    finally:
        engine.close()


def _median_ms(engine, frames: np.ndarray, runs: int = 20) -> float:
    """Median milliseconds of one frame through `engine` (closed after)."""
    try:
        engine.infer(frames[:1])
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            engine.infer(frames[:1])
            times.append((time.perf_counter() - start) * 1e3)
        return round(float(np.median(times)), 3)
    finally:
        engine.close()


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, threshold: float,
                    note: str = '', output: OutputSpec = OutputSpec()) -> CheckResult:
    """Max abs output difference and fraction of pixels with the same class (per the head)."""
    if candidate.shape != reference.shape:
        return CheckResult(float('inf'), 0.0, len(reference), False,
                           f'output shape {candidate.shape} != {reference.shape}')
    diff = float(np.abs(candidate.astype(np.float64) - reference).max())
    ours, theirs = class_ids(candidate, output), class_ids(reference, output)
    agree = float((ours == theirs).mean())
    ious = [np.logical_and(ours == k, theirs == k).sum() / union
            for k in np.union1d(np.unique(ours), np.unique(theirs))
            if (union := np.logical_or(ours == k, theirs == k).sum())]
    passed = bool(agree >= threshold and np.isfinite(diff))
    return CheckResult(diff, agree, len(reference), passed, note, float(np.mean(ious)))


CHECK_SEED, CALIBRATION_SEED = 99, 199


def scene_images(seed: int) -> Iterator[DecodedImage]:
    """Generated scenes of the default task, for models that bring no frames of their own."""
    from jetson_seg.training.scenes import scene_stream

    for scene in scene_stream(seed):
        yield DecodedImage(scene.image, 'rgb')


def model_frames(images: Iterable[DecodedImage], count: int, input_hw: tuple[int, int],
                 spec: InputSpec = InputSpec()) -> np.ndarray:
    """Up to `count` images as the model takes them (NetworkInput, as in the node).

    Checks and calibration then see what inference will see.
    """
    picked = [image for image, _ in zip(images, range(count))]
    if not picked:
        raise OptimizerError('no images to check or calibrate with; check the bag topic or '
                             'image folder')
    net = NetworkInput(spec, input_hw)
    return net.fill(picked, [net.letterbox(im.pixels.shape[:2]) for im in picked]).copy()


def check_frames(count: int, input_hw: tuple[int, int], seed: int = CHECK_SEED,
                 spec: InputSpec = InputSpec()) -> np.ndarray:
    """Generated scenes as the model takes them: what the default model will really see."""
    return model_frames(scene_images(seed), count, input_hw, spec)


def _settings_key(config: OptimizerConfig) -> dict:
    keep = asdict(config)
    for key in ('output_dir', 'force_rebuild', 'input_model'):
        keep.pop(key)
    keep['targets'] = sorted(config.targets)
    return json.loads(json.dumps(keep))


class Optimizer:
    """One optimizer run: load, freeze, convert each target, check, publish.

    `stop` is asked between steps (and between INT8 trials): a non-empty answer (the signal's
    name) ends the run with RunStopped before the next step, its unfinished run folder removed
    and the previous output untouched. A step already running (a conversion in C++) finishes
    first. `step` names the step running, for a failure's message.
    """

    def __init__(self, config: OptimizerConfig, log: Callable[[str], None] = print,
                 stop: Callable[[], str] = lambda: '') -> None:
        self.config = config
        self.log = log
        self.stop = stop
        self.step = 'start'
        self.timings: dict[str, float] = {}
        self._output = Path(config.output_dir).expanduser()

    def _enter(self, step: str) -> None:
        """Begin `step`, unless a stop was asked for: then raise RunStopped."""
        signal_name = self.stop()
        if signal_name:
            raise RunStopped(signal_name, step, self._output)
        self.step = step

    def _frames(self, info: ModelInfo, bag: str, topic: str, folder: str, count: int,
                seed: int) -> np.ndarray:
        """The user's frames (bag topic or image folder) when given, else generated scenes.

        Calibration and checks use different generated seeds: calibrating on the frames the
        check uses would flatter the check.
        """
        images = user_images(bag, topic, folder)
        return model_frames(images() if images else scene_images(seed), count,
                            info.input_hw, info.input)

    def _calibration(self, info: ModelInfo) -> Callable[[], Iterator[np.ndarray]]:
        """INT8 calibration frames on demand: read only when a converter asks for them."""
        cfg = self.config
        return lambda: iter(self._frames(info, cfg.calibration_bag, cfg.calibration_topic,
                                         cfg.calibration_images, cfg.calibration_frames,
                                         CALIBRATION_SEED))

    def _timed(self, name: str, fn, *args, **kwargs):
        """Run `fn` as step `name` (timed); the enclosing step is current again after it."""
        outer = self.step
        self._enter(name)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.timings[name] = round(time.perf_counter() - start, 2)
        self.step = outer
        return result

    def run(self) -> dict:
        """Execute the run; returns the published manifest (or the current one if up to date)."""
        cfg = self.config
        self._enter('input_model')
        source = Path(cfg.input_model).expanduser() if cfg.input_model else default_model_dir()
        if not source.exists():
            raise OptimizerError(f'input_model {source} does not exist; pass -p input_model:='
                                 f'<model folder or file (.keras, .h5, SavedModel, .tflite)>')
        output = self._output
        self._enter('output_dir')
        artefacts.check_output_dir(output)  # before the lock file: nothing written if refused
        with artefacts.exclusive(output):
            return self._build(source, output)

    def _build(self, source_path: Path, output: Path) -> dict:
        """Everything after the inputs are known, with `output` locked against other runs."""
        cfg = self.config
        self._enter('source checksum')
        source_hash = artefacts.source_digest(source_path)
        settings = _settings_key(cfg)
        if not cfg.force_rebuild:
            current = self._up_to_date(output, source_hash, settings)
            if current is not None:
                self.log(f'{output} is up to date for {source_path} (force_rebuild:=true to '
                         f'redo)')
                return current
        source = self._timed('load', ModelSource.open, source_path, cfg.trust_model)
        info = source.info
        self._enter('check frames')
        frames = self._frames(info, cfg.check_bag, cfg.check_topic, cfg.check_images,
                              cfg.check_frames, CHECK_SEED)
        self._enter('source reference outputs')
        reference = source.reference(frames)

        self._enter('new run folder')
        artefacts.remove_stale_runs(output, keep=artefacts.current_run(output))
        run_dir = artefacts.new_run_dir(output)
        try:
            return self._make_run(source_path, source, source_hash, settings, frames,
                                  reference, output, run_dir)
        except BaseException:  # stopped or failed: the unfinished run goes, unless published
            if artefacts.current_run(output) != run_dir.name:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def _make_run(self, source_path: Path, source: ModelSource, source_hash: str,
                  settings: dict, frames: np.ndarray, reference: np.ndarray, output: Path,
                  run_dir: Path) -> dict:
        """Convert and check every target into `run_dir`, then publish it."""
        cfg, info = self.config, source.info
        targets: dict[str, dict] = {}
        skipped: dict[str, str] = {}
        for target in TARGETS:
            if target not in cfg.targets:
                continue
            convert = {'tf': self._target_tf, 'litert': self._target_litert,
                       'tftrt': self._target_tftrt, 'onnx': self._target_onnx,
                       'tensorrt': self._target_tensorrt}[target]
            try:
                targets[target] = self._timed(f'target {target}', convert, source, frames,
                                              reference, run_dir)
            except TargetUnavailable as exc:
                skipped[target] = str(exc)
                self.log(f'target {target} left out: {exc}')
        if not targets:
            raise OptimizerError(f'no target could be made from {source_path}: '
                                 + '; '.join(skipped.values()))
        self._enter('manifest')
        frozen_steps = source.freeze(True).steps if 'tf' in targets else []
        manifest = {
            'model': {'source': str(source_path), 'source_format': source.fmt,
                      'source_sha256': source_hash, **info.description(),
                      # a node with trust off refuses what a trusted source became
                      'trusted_source': cfg.trust_model},
            'settings': settings,
            'freeze_steps': [asdict(step) for step in frozen_steps],
            'targets': targets,
            'skipped_targets': skipped,
            'versions': _versions(),
            'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'timings_s': self.timings,
        }
        self._enter('publish')  # the last point a stop is honoured: publishing is atomic
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

    def _check(self, kind: str, engine, frames: np.ndarray, reference: np.ndarray,
               output: OutputSpec, note: str = '') -> dict:
        """Compare `engine` (anything with infer/close) with the source; it is closed after."""
        result = compare_outputs(reference, _outputs(engine, frames), MASK_AGREEMENT[kind], note,
                                 output)
        self.log(f'check {kind}: max |diff| {result.max_abs_diff:.2e}, mask agreement '
                 f'{result.mask_agreement:.5f} -> {"ok" if result.passed else "FAILED"}')
        if not result.passed:
            raise OptimizerError(f'{kind} artefact does not reproduce the source model '
                                 f'(agreement {result.mask_agreement:.4f} < '
                                 f'{MASK_AGREEMENT[kind]}, max diff {result.max_abs_diff:.3g});'
                                 f' nothing was published')
        return asdict(result)

    def _target_tf(self, source: ModelSource, frames, reference, run_dir: Path) -> dict:
        from jetson_seg.engines.tf_graph import FrozenGraphEngine

        frozen = self._timed('freeze', source.freeze, True)
        self.log('freeze report (node counts per step):\n' + frozen.report())
        path = run_dir / 'tf' / 'model.pb'
        path.parent.mkdir(parents=True)
        path.write_bytes(frozen.graph_def.SerializeToString())
        engine = FrozenGraphEngine.from_frozen(frozen, threads=1)
        check = self._check('tf', engine, frames, reference, source.info.output)
        return {'files': [{'role': 'graph', 'path': 'tf/model.pb'}],
                'input_tensor': frozen.input_name, 'output_tensor': frozen.output_name,
                'nodes': len(frozen.graph_def.node), 'check': check}

    def _target_litert(self, source: ModelSource, frames, reference, run_dir: Path) -> dict:
        from jetson_seg.engines.litert import LiteRtEngine

        cfg = self.config
        precisions = ['FP32']
        if cfg.conversion.precision_mode in ('FP16', 'INT8') and source.quantizable:
            precisions.append(cfg.conversion.precision_mode)
        files, checks, extra = [], {}, {}
        (run_dir / 'litert').mkdir(parents=True)
        for precision in precisions:
            rel = f'litert/model_{precision.lower()}.tflite'
            if precision == 'INT8':
                data, extra['int8_float_ops'], extra['int8_search'] = self._int8_litert(
                    source, frames, reference, run_dir / rel)
            else:
                data = source.to_litert(precision, self._calibration(source.info))
            (run_dir / rel).write_bytes(data)
            engine = LiteRtEngine(run_dir / rel, threads=1, input_hw=source.info.input_hw)
            checks[precision] = self._check(f'litert/{precision}', engine, frames,
                                            reference, source.info.output)
            files.append({'role': precision.lower(), 'path': rel, 'bytes': len(data)})
        return {'files': files, 'check': checks, **extra}

    def _int8_litert(self, source: ModelSource, frames, reference,
                     path: Path) -> tuple[bytes, int, list[dict]]:
        """INT8 LiteRT with the fewest leading float operations that keep the objects.

        With int8_float_ops = -1, 0, 1, 2, 3, 5, 8, 13 float operations are tried until the
        file's class IoU against the source reaches INT8_CLASS_IOU (else the best one tried is
        kept, also when a later conversion fails); a set int8_float_ops is taken as it is.
        Returns (file, float ops, trials).
        """
        from jetson_seg.engines.litert import LiteRtEngine

        fixed = self.config.int8_float_ops
        best, trials, full_int8 = None, [], None
        for float_ops in ((fixed,) if fixed >= 0 else INT8_FLOAT_OPS_TRIED):
            self._enter(f'target litert: INT8 with {float_ops} float operations')
            try:
                data = source.to_litert('INT8', self._calibration(source.info), float_ops,
                                        full_int8)
            except Exception as exc:  # a mixed conversion failed: keep the best one made
                if best is None:
                    raise
                self.log(f'INT8 with the first {float_ops} operations float failed ({exc!r}); '
                         f'keeping the file with {best[1]} float operations')
                break
            if float_ops == 0:  # names the operations of every later cut
                full_int8 = data
            path.write_bytes(data)
            engine = LiteRtEngine(path, threads=1, input_hw=source.info.input_hw)
            result = compare_outputs(reference, _outputs(engine, frames),
                                     MASK_AGREEMENT['litert/INT8'], '', source.info.output)
            # 6 decimals: a trial just below INT8_CLASS_IOU must not read as reaching it
            trials.append({'float_ops': float_ops, 'class_iou': round(result.class_iou, 6),
                           'mask_agreement': round(result.mask_agreement, 5)})
            self.log(f'INT8 with the first {float_ops} operations float: class IoU '
                     f'{result.class_iou:.5f}, mask agreement {result.mask_agreement:.5f}')
            if best is None or result.class_iou > best[2]:
                best = (data, float_ops, result.class_iou)
            if result.class_iou >= artefacts.INT8_CLASS_IOU:
                break
        return best[0], best[1], trials

    def _target_tftrt(self, source: ModelSource, frames, reference, run_dir: Path) -> dict:
        from jetson_seg.engines.gpu import tensorrt_available
        from jetson_seg.engines.tf_graph import FrozenGraphEngine
        from jetson_seg.optimize.convert_tftrt import native_segments_graph, rewrite_for_tensorrt

        settings = self.config.conversion
        if tensorrt_available():
            return self._target_tftrt_gpu(source, frames, reference, run_dir)
        frozen = source.freeze(for_cpu=False)  # no _FusedConv2D: TF-TRT-convertible
        rewritten, report = rewrite_for_tensorrt(frozen, settings)
        self.log(report.text())
        self.log('TensorRT engines were NOT built: no GPU/TensorRT on this machine. The rewrite '
                 'above is a preview of the segments TF-TRT would build with these settings.')
        native = native_segments_graph(rewritten)
        engine = FrozenGraphEngine(native, frozen.input_name, frozen.output_name,
                                   frozen.input_hw, frozen.output_channels, threads=1)
        check = self._check('tftrt', engine, frames, reference, source.info.output,
                            note='TRTEngineOps replaced by their native TF segments')
        path = run_dir / 'tftrt' / 'rewritten_graph.pb'
        path.parent.mkdir(parents=True)
        path.write_bytes(rewritten.SerializeToString())
        return {'files': [{'role': 'rewritten_graph', 'path': 'tftrt/rewritten_graph.pb'}],
                'engines_built': False, 'loadable': False,
                'reason': 'no GPU/TensorRT on the converting machine: segment preview only',
                'settings': asdict(settings), 'segments': report.as_dict(), 'check': check}

    def _target_tftrt_gpu(self, source: ModelSource, frames, reference, run_dir: Path) -> dict:
        """Convert and pre-build engines on this GPU (not exercised in CI: no GPU there)."""
        from jetson_seg.engines.gpu import gpu_and_tensorrt
        from jetson_seg.engines.tftrt import TfTrtEngine
        from jetson_seg.optimize.convert_tftrt import convert_with_tensorrt

        cfg, info = self.config, source.info
        out = run_dir / 'tftrt' / 'saved_model'
        with source.serving_saved_model() as (saved_model, signature):
            convert_with_tensorrt(saved_model, signature, info.input_hw, info.input.dtype,
                                  cfg.conversion, out, cfg.build_batch_sizes, cfg.build_engines,
                                  self._calibration(info))
        engine = TfTrtEngine(out, info.input_hw, info.output_channels, info.output.name)
        check = self._check(f'tftrt/{cfg.conversion.precision_mode}', engine, frames, reference,
                            info.output)
        gpu_name, trt_version = gpu_and_tensorrt()
        return {'files': [{'role': 'saved_model', 'path': 'tftrt/saved_model/saved_model.pb'}],
                'engines_built': cfg.build_engines, 'loadable': True, 'gpu_name': gpu_name,
                'tensorrt': trt_version, 'settings': asdict(cfg.conversion), 'check': check}

    def _target_onnx(self, source: ModelSource, frames, reference, run_dir: Path) -> dict:
        """ONNX from the frozen graph (or tf2onnx's LiteRT path), checked on ONNX Runtime CPU."""
        from jetson_seg.engines.onnxruntime import CPU_EP, OnnxRuntimeEngine
        from jetson_seg.optimize.convert_onnx import OPSET, serialize

        model = source.to_onnx()
        path = run_dir / 'onnx' / 'model.onnx'
        path.parent.mkdir(parents=True)
        data = serialize(model, source.info.description())
        path.write_bytes(data)
        self.log('ONNX nodes: ' + ', '.join(f'{k} {v}' for k, v in model.steps.items()))
        info = source.info

        def cpu_engine(file: Path) -> OnnxRuntimeEngine:
            return OnnxRuntimeEngine(file, threads=1, providers=(CPU_EP,),
                                     input_hw=info.input_hw, layout=info.input.layout,
                                     input_name=info.input.name, output_name=info.output.name)
        check = self._check('onnx', cpu_engine(path), frames, reference, info.output,
                            note='ONNX Runtime CPUExecutionProvider')
        files = [{'role': 'model', 'path': 'onnx/model.onnx', 'bytes': len(data)}]
        extra = {}
        if self.config.conversion.precision_mode == 'INT8' and source.quantizable:
            files.append(self._onnx_int8(path, cpu_engine, frames, reference, info))
            extra['check_int8'] = files[-1].pop('check')
            # INT8 is not always faster on a CPU (QDQ kernels differ by op): timed here, one
            # thread, median of 20 frames, so that precision:=auto can skip a slower INT8
            extra['speed_ms'] = {role: _median_ms(cpu_engine(run_dir / entry['path']), frames)
                                 for role, entry in (('fp32', files[0]), ('int8', files[1]))}
            self.log(f'onnx on this CPU (1 thread): FP32 {extra["speed_ms"]["fp32"]} ms, '
                     f'INT8 {extra["speed_ms"]["int8"]} ms a frame')
        return {'files': files, 'opset': OPSET, 'converter': model.converter,
                'nodes': model.steps, 'input_tensor': model.input_name,
                'output_tensor': model.output_name, 'check': check, **extra}

    def _onnx_int8(self, fp32: Path, cpu_engine, frames, reference, info: ModelInfo) -> dict:
        """The INT8 (QDQ) file of the onnx target, calibrated on the user's frames, checked.

        Its class IoU against the source goes in the manifest, where precision:=auto reads it
        (INT8 served only from INT8_CLASS_IOU on, as for LiteRT).
        """
        from jetson_seg.optimize.convert_onnx import quantize_int8

        feeder = cpu_engine(fp32)
        feeds = (feeder.feed(frame[None]) for frame in self._calibration(info)())
        path = fp32.with_name('model_int8.onnx')
        data = self._timed('quantize onnx INT8', quantize_int8, fp32, path, feeds)
        feeder.close()
        check = self._check('onnx/INT8', cpu_engine(path), frames, reference, info.output,
                            note='ONNX Runtime CPUExecutionProvider, QDQ')
        self.log(f'onnx INT8: class IoU {check["class_iou"]:.4f} against the source')
        return {'role': 'int8', 'path': 'onnx/model_int8.onnx', 'bytes': len(data),
                'check': check}

    def _target_tensorrt(self, source: ModelSource, frames, reference, run_dir: Path) -> dict:
        """A serialized TensorRT engine from the ONNX file; only on a GPU with TensorRT."""
        from jetson_seg.engines.tensorrt import TensorRtPlanRunner
        from jetson_seg.optimize import convert_tensorrt

        why_not = convert_tensorrt.unavailable_reason()
        if why_not:
            raise TargetUnavailable(
                f'the tensorrt target builds a TensorRT engine on the GPU that will run it, and '
                f'this machine cannot: {why_not}. Run the optimizer on the Jetson/GPU, or serve '
                f'the onnx target with engine:=onnxruntime (its TensorRT provider builds '
                f'engines there)')
        onnx_file = run_dir / 'onnx' / 'model.onnx'
        files = [] if onnx_file.is_file() else \
            self._target_onnx(source, frames, reference, run_dir)['files']  # onnx not asked
        cfg = self.config
        built = convert_tensorrt.build_engine(onnx_file, source.info.input_hw, cfg.conversion,
                                              cfg.build_batch_sizes,
                                              self._calibration(source.info))
        rel = f'tensorrt/model_{cfg.conversion.precision_mode.lower()}.engine'
        (run_dir / 'tensorrt').mkdir()
        (run_dir / rel).write_bytes(built.data)
        runner = TensorRtPlanRunner(run_dir / rel)
        check = self._check(f'tensorrt/{cfg.conversion.precision_mode}', runner, frames,
                            reference, source.info.output)
        files.append({'role': cfg.conversion.precision_mode.lower(), 'path': rel,
                      'bytes': len(built.data)})
        return {'files': files,
                'gpu_name': built.gpu_name, 'tensorrt': built.tensorrt,
                'settings': asdict(cfg.conversion), 'check': check}


def _versions() -> dict:
    import tensorflow as tf

    from jetson_seg.engines.gpu import tensorrt_available
    gpus = tf.config.list_physical_devices('GPU')
    return {'tensorflow': tf.__version__, 'python': platform.python_version(),
            'machine': platform.machine(), 'tensorrt_available': tensorrt_available(),
            'gpus': [g.name for g in gpus]}
