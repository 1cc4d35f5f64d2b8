"""Long runs that prove robustness: malformed-input fuzzing and a soak at camera rate.

    python -m jetson_seg.tools.stress fuzz --count 10000
    python -m jetson_seg.tools.stress soak --minutes 10 --rate 60
    python -m jetson_seg.tools.stress kill-optimizer --times 20

Both start the node in its own process and account for every message: after the run,
received == answered + dropped + rejected + unwanted must hold on the node's own counters
(/diagnostics).
The node's resident memory is sampled from /proc throughout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from jetson_seg.allocator import keep_large_allocations

MALFORMED_KINDS = ('truncated', 'unknown_encoding', 'mismatched_encoding', 'zero_size',
                   'absurd_size', 'short_step', 'odd_mono16', 'corrupt_jpeg', 'corrupt_png',
                   'unknown_format', 'empty_compressed')


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def malformed(kind: str, rng: np.random.Generator, valid):
    """One malformed message of `kind`, derived from the valid Image `valid`."""
    from sensor_msgs.msg import CompressedImage, Image

    def image(**fields) -> Image:
        msg = Image(height=valid.height, width=valid.width, encoding=valid.encoding,
                    is_bigendian=0, step=valid.step)
        msg.data = valid_bytes
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg

    valid_bytes = bytes(valid.data)
    cut = int(rng.integers(0, len(valid_bytes)))
    if kind == 'truncated':
        return image(data=valid_bytes[:cut])
    if kind == 'unknown_encoding':
        return image(encoding=rng.choice(['yuv420', 'nv21', '32FC1', 'RGB8', '']))
    if kind == 'mismatched_encoding':  # says 16-bit colour-ish, data is 8-bit: too short
        return image(encoding='16UC3' if rng.random() < 0.5 else 'rgba8')
    if kind == 'zero_size':
        return image(height=0) if rng.random() < 0.5 else image(width=0, step=0)
    if kind == 'absurd_size':
        return image(height=int(rng.integers(50_000, 2**31 - 1)),
                     width=int(rng.integers(50_000, 2**31 - 1)), step=3 * 50_000)
    if kind == 'short_step':
        return image(step=int(rng.integers(0, valid.width * 3)))
    if kind == 'odd_mono16':
        return image(encoding='mono16', step=valid.width * 2, is_bigendian=1,
                     data=valid_bytes[:valid.width * 2 * valid.height - 1])
    rgb = np.frombuffer(valid_bytes, np.uint8).reshape(valid.height, valid.width, 3)
    if kind in ('corrupt_jpeg', 'corrupt_png'):
        ok, buf = cv2.imencode('.jpg' if kind == 'corrupt_jpeg' else '.png', rgb)
        data = bytearray(buf.tobytes()[:max(8, cut // 8)])
        for _ in range(8):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        return CompressedImage(format='jpeg' if kind == 'corrupt_jpeg' else 'png',
                               data=bytes(data))
    if kind == 'unknown_format':
        return CompressedImage(format='webp', data=valid_bytes[:100])
    return CompressedImage(format='png', data=b'')


class _Run:
    """The node in its own process plus a client on the same domain."""

    def __init__(self, out: Path, params: dict, domain_id: int, compressed: bool) -> None:
        import rclpy

        from jetson_seg.tools.node_client import NodeClient, NodeUnderTest, isolated_env

        env = isolated_env(domain_id)
        if compressed:
            params = {**params, 'image_transport': 'compressed'}
        self.node_proc = NodeUnderTest(params, out / f'node_{int(compressed)}.log', env)
        if not rclpy.ok():
            rclpy.init(args=[])  # our flags are not ROS arguments
        self.client = NodeClient.on_own_node(f'stress_client_{int(compressed)}',
                                             outputs=('mask', 'detections'),
                                             compressed=compressed, reliable=True)
        self.client.connect(node_proc=self.node_proc, zero_counters=True)

    def counters(self, settle: float = 3.0) -> dict[str, int]:
        """The node's counters once they stop changing (diagnostics come once a second)."""
        last, stable_since = None, time.time()
        deadline = time.time() + 30
        while time.time() < deadline:
            self.client.spin_for(0.2)
            now = self.client.counters()
            if now != last:
                last, stable_since = now, time.time()
            elif time.time() - stable_since > settle:
                break
        return last or {}

    def close(self) -> int:
        self.client.close()
        return self.node_proc.stop()


def fuzz(count: int, valid_every: int, out: Path, domain_id: int, seed: int = 0) -> dict:
    """Send `count` malformed messages (raw and compressed) with valid frames in between."""
    from std_msgs.msg import Header

    from jetson_seg.ros.interface import set_stamp
    from jetson_seg.ros.messages import image_msg
    from jetson_seg.training.scenes import scene_stream

    rng = np.random.default_rng(seed)
    scene = next(scene_stream(seed))
    report: dict = {'malformed_sent': 0, 'valid_sent': 0, 'valid_answered': 0, 'phases': []}
    raw_kinds = [k for k in MALFORMED_KINDS if k not in (
        'corrupt_jpeg', 'corrupt_png', 'unknown_format', 'empty_compressed')]
    for compressed in (False, True):
        kinds = [k for k in MALFORMED_KINDS if k not in raw_kinds] if compressed else raw_kinds
        run = _Run(out, {'threads': 1, 'input_reliability': 'reliable', 'input_depth': 50,
                         'max_image_pixels': 4096 * 4096}, domain_id,
                   compressed)
        valid = image_msg(Header(frame_id='fuzz'), scene.image, 'rgb8')
        if compressed:
            from sensor_msgs.msg import CompressedImage
            ok, png = cv2.imencode('.png', cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
            valid_c = CompressedImage(header=Header(frame_id='fuzz'), format='png',
                                      data=png.tobytes())
        rss = [rss_mb(run.node_proc.proc.pid)]
        share = count // 2 if not compressed else count - count // 2
        for i in range(share):
            kind = kinds[int(rng.integers(0, len(kinds)))]
            run.client.publisher.publish(malformed(kind, rng, valid))
            report['malformed_sent'] += 1
            run.client.spin_for(0.001)  # paced: a flood only tests drops
            if (i + 1) % valid_every == 0:
                frame = valid_c if compressed else valid
                set_stamp(frame.header, time.time_ns())
                record = run.client.send(frame)
                run.client.spin_until(lambda: record.mask_at is not None, 10.0)
                report['valid_sent'] += 1
                report['valid_answered'] += record.mask_at is not None
                rss.append(rss_mb(run.node_proc.proc.pid))
        counters = run.counters()
        alive = run.node_proc.proc.poll() is None
        code = run.close()
        report['phases'].append({'transport': 'compressed' if compressed else 'raw',
                                 'counters': counters, 'node_alive_at_end': alive,
                                 'exit_code': code, 'rss_mb_start': round(rss[0], 1),
                                 'rss_mb_after_warmup': round(rss[min(1, len(rss) - 1)], 1),
                                 'rss_mb_end': round(rss[-1], 1)})
    return report


def soak(seconds: float, rate: float, out: Path, domain_id: int) -> dict:
    """Stream generated frames at `rate` for `seconds`; RSS and latency per window."""
    from std_msgs.msg import Header

    from jetson_seg.ros.messages import image_msg
    from jetson_seg.tools.report import summarize
    from jetson_seg.training.scenes import CLASS_NAMES, scene_stream

    run = _Run(out, {}, domain_id, False)
    stream = scene_stream(3)
    scenes = [next(stream) for _ in range(30)]
    messages = [image_msg(Header(frame_id='soak'), s.image, 'rgb8') for s in scenes]
    window = min(60.0, max(5.0, seconds / 10))
    windows = []
    pid = run.node_proc.proc.pid
    start = time.time()
    while time.time() - start < seconds:
        run.client.records.clear()
        total = int(rate * window)
        scene_of = run.client.stream_camera(messages, rate, total)
        records = sorted(run.client.records.values(), key=lambda r: r.sent_at)
        s = summarize(records, lambda k: (scenes[scene_of[k]].mask, scenes[scene_of[k]].boxes),
                      CLASS_NAMES)
        windows.append({'t_s': round(time.time() - start, 1), 'rss_mb': round(rss_mb(pid), 1),
                        'answered_fps': s['answered_fps'], 'latency_ms': s['latency_ms'],
                        'mean_iou': s['mean_iou']})
        print(f'  t={windows[-1]["t_s"]:7.1f}s rss {windows[-1]["rss_mb"]:.1f} MiB '
              f'fps {s["answered_fps"]} latency p50 {s["latency_ms"]["p50"]} ms '
              f'p99 {s["latency_ms"]["p99"]} ms', flush=True)
    counters = run.counters()
    alive = run.node_proc.proc.poll() is None
    code = run.close()
    warm = windows[min(1, len(windows) - 1)]['rss_mb']
    return {'seconds': seconds, 'rate_hz': rate, 'windows': windows, 'counters': counters,
            'node_alive_at_end': alive, 'exit_code': code,
            'rss_growth_after_warmup': round((windows[-1]['rss_mb'] - warm) / warm, 4)}


def kill_optimizer(times: int, out: Path, seed: int = 0) -> dict:
    """SIGKILL optimizer runs at random moments; the published artefacts must stay loadable.

    The first run completes, so there is something to protect, and gives the run's duration;
    every later run is killed at a random moment inside that duration (start-up to publishing).
    Whatever the moment, the manifest must name a complete run (the previous one, or the new
    one when the kill came after publishing) whose files verify and load.
    """
    import signal
    import subprocess
    import sys

    from jetson_seg.optimize.artefacts import read_manifest
    from jetson_seg.model_loader import open_model

    rng = np.random.default_rng(seed)
    target = out / 'artefacts'
    base = [sys.executable, '-m', 'jetson_seg.ros.optimizer_node', '--ros-args',
            '-p', f'output_dir:={target}', '-p', 'targets:=[tf,litert]', '-p', 'check_frames:=2',
            '-p', 'force_rebuild:=true']  # every run does the whole conversion
    started = time.time()
    first = subprocess.run(base, capture_output=True, text=True, timeout=600)
    if first.returncode != 0:
        raise RuntimeError(f'initial optimizer run failed:\n{first.stderr[-2000:]}')
    full_run_s = time.time() - started
    kills = []
    for _ in range(times):
        before = read_manifest(target)['run']
        delay = float(rng.uniform(0.3, 0.95 * full_run_s))
        proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        record = {'after_s': round(delay, 2), 'had_finished': finished, 'run_before': before}
        try:
            record['run_after'] = read_manifest(target)['run']
            for engine in ('tf', 'litert'):  # verifies every checksum, then loads
                open_model(str(target), engine, threads=1)[0].close()
            record['loadable'] = True
        except Exception as exc:  # a finding to report, not a reason to stop the run
            record.update(loadable=False, error=repr(exc))
        kills.append(record)
        state = 'finished' if finished else 'mid-run'
        if record.get('run_after') not in (None, before):
            state += ', new run already published'
        print(f'  killed after {delay:5.2f} s ({state}): artefacts {record.get("run_after")} '
              f'{"load" if record["loadable"] else "BROKEN"}', flush=True)
    return {'full_run_s': round(full_run_s, 2), 'kills': kills,
            'killed_mid_run': sum(not k['had_finished'] for k in kills),
            'all_loadable': all(k['loadable'] for k in kills)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='mode', required=True)
    f = sub.add_parser('fuzz', help='malformed messages interleaved with valid frames')
    f.add_argument('--count', type=int, default=10_000)
    f.add_argument('--valid-every', type=int, default=100)
    s = sub.add_parser('soak', help='camera-rate stream for a long time')
    s.add_argument('--minutes', type=float, default=10.0)
    s.add_argument('--rate', type=float, default=60.0)
    k = sub.add_parser('kill-optimizer', help='SIGKILL optimizer runs at random moments')
    k.add_argument('--times', type=int, default=20)
    for p in (f, s, k):
        p.add_argument('--output', type=Path, default=Path('output/stress'))
        p.add_argument('--domain-id', type=int, default=81)
    args = parser.parse_args(argv)
    keep_large_allocations()  # this process sends and receives frames too
    args.output.mkdir(parents=True, exist_ok=True)
    import rclpy
    try:
        if args.mode == 'fuzz':
            result = fuzz(args.count, args.valid_every, args.output, args.domain_id)
        elif args.mode == 'kill-optimizer':
            result = kill_optimizer(args.times, args.output)
        else:
            result = soak(args.minutes * 60, args.rate, args.output, args.domain_id)
    finally:
        rclpy.try_shutdown()
    path = args.output / f'{args.mode}.json'
    path.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps({k: v for k, v in result.items() if k != 'windows'}, indent=2))
    print(f'written {path}')


if __name__ == '__main__':
    main()
