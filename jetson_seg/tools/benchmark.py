"""Benchmark: engines side by side, the node end to end over Fast DDS, and its per-stage cost.

    python -m jetson_seg.tools.benchmark --output output/benchmark [--quick]
    python -m jetson_seg.tools.benchmark --models '' models/small_objects/optimized

The machine's yardstick comes first (matmul ceiling, Keras eager and LiteRT FP32 1-thread time
of the default model): these machines differ 2-2.5x in speed, and figures from two machines
compare only through it. Each engine runs in its own process (thread pools of TF and LiteRT
would otherwise fight over the cores), on the default model at its input size, batch 1; the
LiteRT FP32/INT8 files are the packaged optimizer output the node serves. The node is measured
the way ros2_benchmark does: fixed input rates, latency from send to mask received, dropped
frames; peak throughput is the highest rate with < 5% dropped. Writes benchmark.json,
benchmark.md and benchmark.png to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from jetson_seg.allocator import keep_large_allocations
from jetson_seg.tools.report import markdown_table, save_figure

#: Engine threads of the node under test. One: inference overlaps postprocessing and the camera
#: on the other core; 2 threads measured slower end to end at 150-200 Hz on 2 cores.
NODE_THREADS = 1
#: The node runs with every output subscribed (mask, colour mask, overlay, detections), as a
#: robot with a viewer would; colour images are timed but only a few are kept in memory.
KEEP_IMAGES = {'color_mask': 2, 'overlay': 2}
#: Yardstick kinds first: they are printed before the rest is measured.
ENGINE_KINDS = ('keras_eager', 'litert_fp32_1', 'keras_eager_1', 'tf_function', 'tf_frozen',
                'litert_fp32_2', 'litert_fp16_1', 'litert_int8_1', 'litert_int8_2',
                'onnxruntime_1', 'onnxruntime_2', 'onnxruntime_int8_1')


def _timeit(fn, iterations: int, warmup: int = 10) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    arr = np.array(times)
    return {'ms_p50': round(float(np.percentile(arr, 50)), 3),
            'ms_p99': round(float(np.percentile(arr, 99)), 3),
            'ms_min': round(float(arr.min()), 3), 'iterations': iterations}


def _matmul_ceiling() -> dict:
    """Best float32 matmul rate of numpy on all cores: the practical compute ceiling."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    stats = _timeit(lambda: a @ a, 10, warmup=2)
    return {'gflops': round(2 * 2048 ** 3 / (stats['ms_min'] / 1e3) / 1e9, 1)}


def _served_worker(model_path: str, iterations: int) -> dict:
    """Time a model as the node's auto choice serves it, one thread; runs in a fresh process."""
    from jetson_seg.model_loader import open_model
    from jetson_seg.optimize.optimizer import check_frames

    engine, info = open_model(model_path, 'auto', NODE_THREADS)
    frame = check_frames(1, info.input_hw, spec=info.input)
    stats = _timeit(lambda: engine.infer(frame), iterations)
    engine.close()
    return {**stats, 'served': engine.label, 'input': f'{info.input_hw[1]}x{info.input_hw[0]}'}


def _compare_models(paths: list[str], rounds: int, iterations: int) -> dict:
    """Each model's served engine time, alternating in fresh processes, and its ratio to the first.

    Alternating rounds spread a shared machine's load over every model alike; the ratio of the
    medians, and round by round (the same round's load on both).
    """
    runs: dict[str, list[dict]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            runs[path].append(_in_subprocess(['--served-worker', path,
                                              '--iterations', str(iterations)]))
    medians = {path: float(np.median([r['ms_p50'] for r in got])) for path, got in runs.items()}
    return {'threads': NODE_THREADS, 'iterations': iterations, 'models': [
        {'model': path or '(default)', 'served': got[0]['served'], 'input': got[0]['input'],
         'ms_p50_runs': [r['ms_p50'] for r in got], 'ms_p50_median': round(medians[path], 3),
         'ratio': round(medians[path] / medians[paths[0]], 2),
         'ratio_runs': [round(r['ms_p50'] / first['ms_p50'], 2)
                        for r, first in zip(got, runs[paths[0]])]}
        for path, got in runs.items()]}


def _engine_worker(kind: str, iterations: int) -> dict:
    """Time one runtime on the default model; runs in a fresh process."""
    import tensorflow as tf

    from jetson_seg.model_info import KERAS_FILE, default_model_dir, load_keras
    from jetson_seg.optimize.freeze import freeze_keras_model
    from jetson_seg.optimize.optimizer import check_frames

    # keras_eager_1: the same call on one thread, the node engine's share of a 2-core machine
    tf.config.threading.set_intra_op_parallelism_threads(1 if kind == 'keras_eager_1' else
                                                         os.cpu_count())
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = load_keras(default_model_dir() / KERAS_FILE)
    frame = check_frames(1, tuple(model.input_shape[1:3]))
    if kind.startswith('keras_eager'):
        def run():
            return model(frame, training=False).numpy()
    elif kind == 'tf_function':
        fn = tf.function(lambda x: model(x, training=False))
        tensor = tf.constant(frame)

        def run():
            return fn(tensor).numpy()
    elif kind == 'tf_frozen':
        from jetson_seg.engines.tf_graph import FrozenGraphEngine
        frozen = freeze_keras_model(model)
        engine = FrozenGraphEngine.from_frozen(frozen, threads=os.cpu_count())

        def run():
            return engine.infer(frame)
    elif kind.startswith('litert_'):
        from jetson_seg.model_loader import open_model
        from jetson_seg.optimize.convert_litert import convert_to_litert
        _, precision, threads = kind.split('_')
        if precision == 'fp16':  # not shipped (no gain on a CPU): converted here
            from jetson_seg.engines.litert import LiteRtEngine
            engine = LiteRtEngine(convert_to_litert(model, 'FP16'), int(threads))
        else:
            engine, _ = open_model('', 'litert', int(threads), precision=precision)

        def run():
            return engine.infer(frame)
    elif kind.startswith('onnxruntime_'):  # the optimizer's onnx target, CPU provider
        import tempfile

        from jetson_seg.engines.onnxruntime import CPU_EP, OnnxRuntimeEngine
        from jetson_seg.optimize import convert_onnx
        path = Path(tempfile.mkdtemp()) / 'model.onnx'
        path.write_bytes(convert_onnx.serialize(
            convert_onnx.from_frozen(freeze_keras_model(model, for_cpu=False)), {}))
        if '_int8_' in kind:  # the optimizer's INT8 (QDQ), calibrated on 32 generated scenes
            feeder = OnnxRuntimeEngine(path, threads=1, providers=(CPU_EP,))
            calibration = check_frames(32, tuple(model.input_shape[1:3]), seed=199)
            convert_onnx.quantize_int8(path, path.with_name('model_int8.onnx'),
                                       (feeder.feed(f[None]) for f in calibration))
            path = path.with_name('model_int8.onnx')
        engine = OnnxRuntimeEngine(path, threads=int(kind[-1]), providers=(CPU_EP,))

        def run():
            return engine.infer(frame)
    else:
        raise ValueError(kind)
    return _timeit(run, iterations)


def _hot_path_worker() -> dict:
    """Per-frame cost and transient allocation of message -> mask -> messages, in-process."""
    import tracemalloc

    from std_msgs.msg import Header

    from jetson_seg.vision.image_conversion import decode_image
    from jetson_seg.ros.messages import detections_msg, image_msg
    from jetson_seg.ros.serialized import serialized_image
    from jetson_seg.model_loader import open_model
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted
    from jetson_seg.training.scenes import scene_stream

    engine, info = open_model('', 'auto', threads=0)
    pipeline = SegmentationPipeline(engine, info, PipelineConfig())
    msg = image_msg(Header(frame_id='bench'), next(scene_stream(3)).image, 'rgb8')

    def frame(wanted: Wanted) -> None:
        result = pipeline.run(decode_image(msg), wanted)
        for array, encoding in ((result.mask, 'mono8'), (result.color_mask, 'rgb8'),
                                (result.overlay, 'rgb8')):
            if array is not None:
                serialized_image(msg.header, array, encoding)
        if result.regions is not None:
            detections_msg(msg.header, result.regions, info.class_names)

    out = {}
    for name, wanted in (('all outputs', Wanted()),
                         ('mask only', Wanted(color_mask=False, overlay=False,
                                              detections=False))):
        stats = _timeit(lambda: frame(wanted), 100)
        tracemalloc.start()
        frame(wanted)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        frame(wanted)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        out[name] = {**stats, 'peak_transient_mb': round(peak / 2**20, 2)}
    return out


def _in_subprocess(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, '-m', 'jetson_seg.tools.benchmark', *args],
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
    if result.returncode != 0:
        raise RuntimeError(f'benchmark worker {args} failed:\n{result.stderr[-2000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _node_runs(rates: list[float], seconds: float, domain_id: int, out: Path) -> list[dict]:
    """Stream generated 640x480 frames at each rate through one node process."""
    import rclpy
    from std_msgs.msg import Header

    from jetson_seg.ros.messages import image_msg
    from jetson_seg.tools.node_client import NodeClient, NodeUnderTest, isolated_env
    from jetson_seg.tools.report import summarize
    from jetson_seg.training.scenes import CLASS_NAMES, scene_stream

    env = isolated_env(domain_id)
    node_proc = NodeUnderTest({'threads': NODE_THREADS}, out / 'node.log', env)
    rclpy.init(args=[])  # our flags are not ROS arguments
    node = rclpy.create_node('benchmark_camera')
    runs = []
    try:
        stream = scene_stream(11)
        scenes = [next(stream) for _ in range(60)]
        messages = [image_msg(Header(frame_id='bench'), s.image, 'rgb8') for s in scenes]
        for rate in rates:
            client = NodeClient(node, keep_at_most=KEEP_IMAGES)
            client.connect(node_proc=node_proc)
            total = int(rate * seconds)
            cpu0, t0 = _cpu_seconds(node_proc.proc.pid), time.time()
            scene_of = client.stream_camera(messages, rate, total)
            cpu = (_cpu_seconds(node_proc.proc.pid) - cpu0) / (time.time() - t0)
            records = sorted(client.records.values(), key=lambda r: r.sent_at)
            figures = client.figures()
            summary = summarize(records, lambda k: (scenes[scene_of[k]].mask,
                                                    scenes[scene_of[k]].boxes), CLASS_NAMES)
            summary.update(rate_hz=rate, node_cpu_cores=round(cpu, 2),
                           drop_fraction=round(summary['dropped'] / max(total, 1), 4),
                           stages_ms={k.split('.', 1)[1]: float(v) for k, v in
                                      figures.items() if k.startswith('stage_ms.')},
                           engine=figures.get('engine'))
            runs.append(summary)
            print(f'  node at {rate:g} Hz: answered {summary["answered"]}/{total}, '
                  f'latency p50 {summary["latency_ms"]["p50"]} ms p99 '
                  f'{summary["latency_ms"]["p99"]} ms, mIoU {summary["mean_iou"]}, '
                  f'cpu {cpu:.2f} cores', flush=True)
            client.close()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        node_proc.stop()
    return runs


def _multi_camera_runs(counts: list[int], rate: float, seconds: float, domain_id: int,
                       out: Path) -> list[dict]:
    """One node serving N cameras (batched); every camera publishes at `rate`."""
    import rclpy
    from std_msgs.msg import Header

    from jetson_seg.ros.interface import set_stamp
    from jetson_seg.ros.messages import image_msg
    from jetson_seg.tools.node_client import NodeClient, NodeUnderTest, isolated_env
    from jetson_seg.training.scenes import scene_stream

    env = isolated_env(domain_id)
    frame = next(scene_stream(5)).image
    runs = []
    rclpy.init(args=[])  # our flags are not ROS arguments
    for count in counts:
        cameras = [f'cam{i}' for i in range(count)]
        node_proc = NodeUnderTest({'threads': NODE_THREADS,
                                   'cameras': '[' + ','.join(cameras) + ']'},
                                  out / f'node_{count}cams.log', env, namespace='/bench')
        node = rclpy.create_node(f'bench_cameras_{count}')
        try:
            clients = [NodeClient(node, namespace=f'/bench/{cam}', keep_at_most=KEEP_IMAGES)
                       for cam in cameras]
            for client in clients:
                client.connect(node_proc=node_proc)
            messages = [image_msg(Header(frame_id=cam), frame, 'rgb8') for cam in cameras]
            start = time.time()
            ticks = int(rate * seconds)
            for tick in range(ticks):
                delay = start + tick / rate - time.time()
                if delay > 0:
                    clients[0].spin_for(delay)  # one node: serves every client's callbacks
                now = time.time_ns()
                for client, msg in zip(clients, messages):
                    set_stamp(msg.header, now)
                    client.send(msg)
            clients[0].spin_for(1.5)
            answered = [client.answered() for client in clients]
            span = time.time() - start - 1.5
            runs.append({'cameras': count, 'rate_per_camera_hz': rate,
                         'fps_per_camera': round(float(np.mean(answered)) / span, 1),
                         'fps_total': round(sum(answered) / span, 1)})
            print(f'  {count} camera(s) at {rate:g} Hz each: '
                  f'{runs[-1]["fps_per_camera"]} fps per camera, '
                  f'{runs[-1]["fps_total"]} fps in all', flush=True)
        finally:
            node.destroy_node()
            node_proc.stop()
    rclpy.try_shutdown()
    return runs


def _yardstick(result: dict) -> str:
    engines = result['engines']
    return (f'yardstick: matmul ceiling {result["matmul_ceiling_gflops"]} GFLOP/s, Keras eager '
            f'{engines["keras_eager"]["ms_p50"]} ms, LiteRT FP32 1 thread '
            f'{engines["litert_fp32_1"]["ms_p50"]} ms (default model, batch 1)')


def _targets(result: dict) -> list[str]:
    """The performance issue's targets against this run's figures (met or not)."""
    engine_ms = result['engines'][result['node_engine_kind']]['ms_p50']
    at_120 = next((r for r in result['node'] if r['rate_hz'] == 120.0), None)
    speedup = result['engines']['keras_eager']['ms_p50'] / engine_ms
    threads = int(result['node_engine_kind'].rsplit('_', 1)[-1]) \
        if result['node_engine_kind'].startswith('litert') else 0
    same = result['engines'].get(f'keras_eager_{threads}')
    stages = result['stages_ms']
    checks = [
        ('preprocess <= 0.3 ms', f'{stages["preprocess"]:.2f} ms', stages['preprocess'] <= 0.3),
        ('postprocess (mask at input resolution, colour, detections) <= 1.5 ms',
         f'{stages["postprocess"]:.2f} ms (overlay {stages.get("overlay", 0.0):.2f} ms more)',
         stages['postprocess'] <= 1.5),
        ('peak throughput >= 120 Hz (< 5% dropped)', f'{result["peak_throughput_hz"]} Hz',
         (result['peak_throughput_hz'] or 0) >= 120),
        ('node per-frame cost <= 1.25x engine', f'{result["node_vs_engine"]:.2f}x',
         result['node_vs_engine'] <= 1.25),
        ('p99 latency at 120 Hz <= 3x engine', f'{at_120["latency_ms"]["p99"]} ms vs '
         f'{3 * engine_ms:.1f} ms' if at_120 else 'not run',
         bool(at_120) and at_120['latency_ms']['p99'] <= 3 * engine_ms),
        ('served engine >= 15x Keras eager', f'{speedup:.1f}x', speedup >= 15),
    ]
    if same:  # the same comparison with Keras on the engine's own thread count
        ratio = same['ms_p50'] / engine_ms
        checks.append((f'served engine >= 15x Keras eager, both on {threads} thread(s)',
                       f'{ratio:.1f}x', ratio >= 15))
    return [f'- {name}: {figure} -> {"met" if ok else "NOT met"}' for name, figure, ok in checks]


def _markdown(result: dict) -> str:
    ceiling = result['matmul_ceiling_gflops']
    base = result['engines']['keras_eager']['ms_p50']
    lines = [f'Measured {result["date"]} on {result["machine"]} ({result["cores"]} cores), '
             f'default model ({result["gflop_per_frame"]:.3f} GFLOP/frame at '
             f'{result["input"]}), batch 1.', '', _yardstick(result), '']
    lines += markdown_table(
        ('engine', 'ms p50', 'ms p99', 'fps', 'GFLOP/s', 'of ceiling', 'vs Keras eager'),
        [(kind, e['ms_p50'], e['ms_p99'], e['fps'], e['gflops'], f'{e["gflops"] / ceiling:.1%}',
          f'{base / e["ms_p50"]:.1f}x') for kind, e in result['engines'].items()])
    lines += ['']
    lines += markdown_table(
        ('input rate', 'answered fps', 'dropped', 'latency p50', 'latency p99',
         'node CPU (cores)', 'mIoU'),
        [(f'{run["rate_hz"]:g} Hz', run['answered_fps'], f'{run["drop_fraction"]:.1%}',
          f'{run["latency_ms"]["p50"]} ms', f'{run["latency_ms"]["p99"]} ms',
          run['node_cpu_cores'], run['mean_iou']) for run in result['node']])
    lines += ['', f'Peak throughput (< 5% dropped): {result["peak_throughput_hz"]} Hz.', '']
    lines += markdown_table(
        ('node stage', 'ms (median)'),
        [(stage, f'{ms:.2f}') for stage, ms in result['stages_ms'].items()]
        + [('**total per frame**', f'**{result["node_frame_ms"]:.2f}**')])
    lines += ['', f'Node per-frame cost / engine-only ({result["node_engine"]}): '
                  f'{result["node_vs_engine"]:.2f}x (sum of the stage medians at 30 Hz)']
    if result['saturated_frame_ms']:
        engine_ms = result['engines'][result['node_engine_kind']]['ms_p50']
        lines += ['', f'Wall time per frame with the node saturated (1 / most fps answered, '
                      f'stages overlapping on two threads): {result["saturated_frame_ms"]} ms, '
                      f'{result["saturated_frame_ms"] / engine_ms:.2f}x engine-only']
    lines += ['', 'Targets:', *_targets(result), '']
    lines += markdown_table(
        ('cameras on one node', 'input per camera', 'answered fps per camera',
         'answered fps in all'),
        [(run['cameras'], f'{run["rate_per_camera_hz"]:g} Hz', run['fps_per_camera'],
          run['fps_total']) for run in result['cameras']])
    lines += ['']
    lines += markdown_table(
        ('hot path in one process (decode -> messages)', 'ms p50', 'ms p99',
         'peak transient MiB'),
        [(name, hp['ms_p50'], hp['ms_p99'], hp['peak_transient_mb'])
         for name, hp in result['hot_path'].items()])
    return '\n'.join(lines) + '\n'


def _plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    kinds = list(result['engines'])
    ax1.barh(kinds, [result['engines'][k]['ms_p50'] for k in kinds])
    ax1.set_xlabel('ms per frame (p50), batch 1')
    ax1.set_title('engines on the default model')
    rates = [r['rate_hz'] for r in result['node']]
    ax2.plot(rates, [r['latency_ms']['p50'] for r in result['node']], 'o-', label='p50')
    ax2.plot(rates, [r['latency_ms']['p99'] for r in result['node']], 's-', label='p99')
    ax2.plot(rates, [r['drop_fraction'] * 100 for r in result['node']], 'x--',
             label='dropped %')
    ax2.set_xlabel('input rate (Hz)')
    ax2.set_ylabel('latency (ms) / dropped (%)')
    ax2.set_title('node end to end over Fast DDS (640x480)')
    ax2.legend()
    ax2.grid(alpha=0.3)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', type=Path, default=Path('output/benchmark'))
    parser.add_argument('--quick', action='store_true', help='fewer iterations and seconds')
    parser.add_argument('--domain-id', type=int, default=79)
    parser.add_argument('--engine-worker', help=argparse.SUPPRESS)
    parser.add_argument('--matmul-worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--hot-path-worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--iterations', type=int, default=200)
    parser.add_argument('--models', nargs='+', metavar='PATH',
                        help="only time these models as precision auto serves them (one "
                             "thread, fresh processes, alternating): one JSON line with each "
                             "one's time and its ratio to the first; '' is the default model")
    parser.add_argument('--rounds', type=int, default=3, help='rounds of --models')
    parser.add_argument('--served-worker', help=argparse.SUPPRESS)
    parser.add_argument('--stages-only', type=float, metavar='SECONDS',
                        help='only the node at 30 Hz for SECONDS: one JSON line of stage '
                             'medians, node CPU and latency, to compare commits run by run')
    args = parser.parse_args(argv)
    keep_large_allocations()  # this process sends and receives frames too
    if args.stages_only:
        args.output.mkdir(parents=True, exist_ok=True)
        run = _node_runs([30.0], args.stages_only, args.domain_id, args.output)[0]
        print(json.dumps({'stages_ms': run['stages_ms'], 'node_cpu_cores': run['node_cpu_cores'],
                          'latency_p50_ms': run['latency_ms']['p50'],
                          'answered': run['answered']}))
        return
    if args.models:
        print(json.dumps(_compare_models(args.models, args.rounds, args.iterations)))
        return
    if args.served_worker is not None:
        print(json.dumps(_served_worker(args.served_worker, args.iterations)))
        return
    if args.engine_worker:
        print(json.dumps(_engine_worker(args.engine_worker, args.iterations)))
        return
    if args.matmul_worker:
        print(json.dumps(_matmul_ceiling()))
        return
    if args.hot_path_worker:
        print(json.dumps(_hot_path_worker()))
        return

    from jetson_seg.model_info import MODEL_JSON, default_model_dir

    meta = json.loads((default_model_dir() / MODEL_JSON).read_text())
    gflop = meta['gflop_per_frame']
    iterations = 50 if args.quick else args.iterations
    args.output.mkdir(parents=True, exist_ok=True)
    result = {'date': time.strftime('%Y-%m-%d'), 'machine': platform.processor() or
              platform.machine(), 'cores': os.cpu_count(), 'gflop_per_frame': gflop,
              'input': f'{meta["input"]["width"]}x{meta["input"]["height"]}'}
    result['matmul_ceiling_gflops'] = _in_subprocess(['--matmul-worker'])['gflops']
    result['engines'] = {}
    for kind in ENGINE_KINDS:
        stats = _in_subprocess(['--engine-worker', kind, '--iterations', str(iterations)])
        stats['fps'] = round(1e3 / stats['ms_p50'], 1)
        stats['gflops'] = round(gflop / (stats['ms_p50'] / 1e3), 1)
        result['engines'][kind] = stats
        print(f'  {kind}: {stats["ms_p50"]} ms p50, {stats["ms_p99"]} ms p99', flush=True)
        if kind == ENGINE_KINDS[1]:
            print(_yardstick(result), flush=True)
    result['hot_path'] = _in_subprocess(['--hot-path-worker'])
    seconds = 5.0 if args.quick else 10.0
    rates = [30.0, 60.0, 120.0, 150.0] + ([] if args.quick else [90.0, 200.0])
    result['node'] = _node_runs(sorted(rates), seconds, args.domain_id, args.output)
    result['cameras'] = _multi_camera_runs([1, 2, 4], 60.0, seconds, args.domain_id + 1,
                                           args.output)
    ok = [r['rate_hz'] for r in result['node'] if r['drop_fraction'] < 0.05]
    result['peak_throughput_hz'] = max(ok) if ok else None
    stages = result['node'][0]['stages_ms']
    result['stages_ms'] = stages
    result['node_frame_ms'] = sum(stages.values())
    result['node_engine'] = result['node'][0]['engine']  # e.g. litert/int8
    name, _, precision = result['node_engine'].partition('/')
    result['node_engine_kind'] = f'litert_{precision}_{NODE_THREADS}' if name == 'litert' \
        else 'tf_frozen'
    result['node_vs_engine'] = result['node_frame_ms'] / \
        result['engines'][result['node_engine_kind']]['ms_p50']
    # the stages overlap on two threads: at saturation a frame costs 1 / answered fps of wall
    saturated = [r['answered_fps'] for r in result['node'] if r['drop_fraction'] >= 0.05]
    result['saturated_frame_ms'] = round(1e3 / max(saturated), 2) if saturated else None
    (args.output / 'benchmark.json').write_text(json.dumps(result, indent=2) + '\n')
    (args.output / 'benchmark.md').write_text(_markdown(result))
    _plot(result, args.output / 'benchmark.png')
    print()
    print(_markdown(result))
    print(f'benchmark.json, benchmark.md and benchmark.png in {args.output}/')


if __name__ == '__main__':
    main()
