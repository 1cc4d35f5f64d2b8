"""Demo: the segmentation node on a generated 640x480 camera stream, measured and pictured.

    python -m jetson_seg.demo --rate 120 --duration 20 --output output/demo

Starts the node in its own process (as `ros2 run` would), publishes generated scenes at the given
rate from this process, collects every output over Fast DDS, then prints achieved fps, latency
percentiles, dropped frames and mIoU against the scenes' ground truth, and writes overlay
pictures, a latency/fps plot and summary.json to the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO_CONFIG = Path(__file__).resolve().parent.parent / 'config'


def _fastdds_profile() -> str:
    from jetson_seg.model_store import default_model_dir

    for base in (default_model_dir().parent.parent / 'config', REPO_CONFIG):
        profile = base / 'fastdds_large_images.xml'
        if profile.is_file():
            return str(profile)
    raise FileNotFoundError('config/fastdds_large_images.xml not found')


def _prepare_env(args) -> dict[str, str]:
    """One DDS domain for the demo, local discovery, large-image profile, logs in a temp dir."""
    env = {
        'ROS_DOMAIN_ID': str(args.domain_id),
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'FASTDDS_DEFAULT_PROFILES_FILE': _fastdds_profile(),
        'ROS_LOG_DIR': tempfile.mkdtemp(prefix='jetson_seg_demo_log_'),
        'TF_CPP_MIN_LOG_LEVEL': '2',
    }
    os.environ.update(env)
    return dict(os.environ)


def _scenes(count: int, seed: int):
    from tqdm import tqdm

    from jetson_seg.scenes import scene_stream

    stream = scene_stream(seed)
    frames = tqdm(range(count), desc='generating camera frames', unit='frame')
    return [next(stream) for _ in frames]


class _Collector:
    """Receives the node's outputs and remembers when each stamp's mask arrived."""

    def __init__(self, node, keep_pictures: int) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray

        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self.masks: dict[int, tuple[float, bytes, int, int, int]] = {}
        self.overlays: dict[int, object] = {}
        self.detections: dict[int, int] = {}
        self.keep_pictures = keep_pictures
        self.diagnostics: dict[str, str] = {}
        node.create_subscription(Image, 'segmentation/mask', self._on_mask, qos)
        node.create_subscription(Image, 'segmentation/overlay', self._on_overlay, qos)
        node.create_subscription(Image, 'segmentation/color_mask', lambda m: None, qos)
        node.create_subscription(Detection2DArray, 'segmentation/detections',
                                 self._on_detections, qos)
        from diagnostic_msgs.msg import DiagnosticArray
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    @staticmethod
    def _key(msg) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def _on_mask(self, msg) -> None:
        self.masks[self._key(msg)] = (time.time(), bytes(msg.data), msg.height, msg.width,
                                      msg.step)

    def _on_overlay(self, msg) -> None:
        if len(self.overlays) < self.keep_pictures:
            self.overlays[self._key(msg)] = msg

    def _on_detections(self, msg) -> None:
        self.detections[self._key(msg)] = len(msg.detections)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            self.diagnostics = {kv.key: kv.value for kv in status.values}


def _publish_loop(pub, messages, rate: float, duration: float, sent: list, stop) -> None:
    """Publish at a fixed rate with fresh stamps; `sent` records (stamp_ns, scene index)."""
    period = 1.0 / rate
    start = time.time()
    i = 0
    while not stop.is_set():
        target = start + i * period
        if target - start > duration:
            break
        delay = target - time.time()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        msg = messages[i % len(messages)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(now), int((now % 1) * 1e9)
        pub.publish(msg)
        sent.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                     i % len(messages), now))
        i += 1


def _evaluate(sent, collector, scenes):
    from jetson_seg.metrics import ConfusionMatrix
    from jetson_seg.scenes import CLASS_NAMES

    conf = ConfusionMatrix(len(CLASS_NAMES))
    latencies, answered_at = [], []
    for key, index, sent_at in sent:
        got = collector.masks.get(key)
        if got is None:
            continue
        received_at, data, h, w, step = got
        latencies.append((received_at - sent_at) * 1e3)
        answered_at.append(received_at)
        mask = np.frombuffer(data, np.uint8).reshape(h, step)[:, :w]
        conf.add(scenes[index].mask, mask)
    return conf, np.array(latencies), np.array(answered_at)


def _write_pictures(out: Path, collector, sent, scenes, count: int) -> list[str]:
    import cv2

    from jetson_seg.scenes import CLASS_COLORS

    index_of = {key: index for key, index, _ in sent}
    palette = np.array(CLASS_COLORS, np.uint8)
    written = []
    for n, (key, msg) in enumerate(sorted(collector.overlays.items())[:count]):
        overlay = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[
            :, :msg.width * 3].reshape(msg.height, msg.width, 3)
        scene = scenes[index_of[key]]
        got = collector.masks.get(key)
        pred = np.frombuffer(got[1], np.uint8).reshape(got[2], got[4])[:, :got[3]] if got \
            else np.zeros_like(scene.mask)
        top = np.hstack([scene.image, overlay])
        bottom = np.hstack([palette[scene.mask], palette[pred]])
        panel = np.vstack([top, bottom])
        for text, xy in (('input', (10, 30)), ('overlay (node)', (650, 30)),
                         ('ground truth', (10, 510)), ('mask (node)', (650, 510))):
            cv2.putText(panel, text, xy, cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        path = out / f'frame_{n:02d}.png'
        cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        written.append(path.name)
    return written


def _plot(out: Path, sent, latencies, answered_at, rate: float) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t0 = sent[0][2]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    ax1.plot(answered_at - t0, latencies, '.', markersize=3)
    ax1.set_ylabel('latency (ms)\nstamp -> mask received')
    ax1.set_title(f'jetson_seg node, generated 640x480 camera at {rate:g} Hz')
    ax1.grid(alpha=0.3)
    seconds = np.arange(0, int(np.ceil(sent[-1][2] - t0)) + 1)
    sent_rate = np.histogram([s[2] - t0 for s in sent], bins=seconds)[0]
    done_rate = np.histogram(answered_at - t0, bins=seconds)[0]
    ax2.step(seconds[:-1], sent_rate, where='post', label='published (camera)')
    ax2.step(seconds[:-1], done_rate, where='post', label='answered (node)')
    ax2.set_ylabel('frames per second')
    ax2.set_xlabel('time (s)')
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = out / 'latency_fps.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rate', type=float, default=120.0, help='camera rate (Hz)')
    parser.add_argument('--duration', type=float, default=20.0, help='seconds of streaming')
    parser.add_argument('--frames', type=int, default=120, help='distinct generated frames')
    parser.add_argument('--seed', type=int, default=2024)
    parser.add_argument('--output', default='output/demo')
    parser.add_argument('--domain-id', type=int, default=77)
    parser.add_argument('--node-arg', action='append', default=[],
                        help='extra node parameter, e.g. --node-arg engine:=tf')
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    env = _prepare_env(args)

    cmd = [sys.executable, '-m', 'jetson_seg.segmentation_node', '--ros-args']
    for item in args.node_arg:
        cmd += ['-p', item]
    node_log = open(out / 'node.log', 'w')
    node_proc = subprocess.Popen(cmd, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    try:
        _run(args, out, node_proc)
    finally:
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        node_log.close()


def _run(args, out: Path, node_proc) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from tqdm import tqdm

    from jetson_seg.messages import image_msg

    scenes = _scenes(args.frames, args.seed)
    rclpy.init()
    node = rclpy.create_node('demo_camera')
    pub = node.create_publisher(Image, 'image',
                                QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    collector = _Collector(node, keep_pictures=args.frames)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    messages = [image_msg(Header(frame_id='demo_camera'), scene.image, 'rgb8')
                for scene in scenes]

    print('waiting for the node to load the model and subscribe ...', flush=True)
    deadline = time.time() + 120
    while pub.get_subscription_count() == 0 or node.count_publishers('segmentation/mask') == 0:
        executor.spin_once(timeout_sec=0.1)
        if node_proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f'node did not start; see {out / "node.log"}')
    executor.spin_once(timeout_sec=0.5)

    sent: list = []
    stop = threading.Event()
    publisher = threading.Thread(target=_publish_loop,
                                 args=(pub, messages, args.rate, args.duration, sent, stop))
    publisher.start()
    with tqdm(total=int(args.rate * args.duration), desc=f'streaming {args.rate:g} Hz',
              unit='frame') as bar:
        while publisher.is_alive():
            executor.spin_once(timeout_sec=0.05)
            bar.n = len(sent)
            bar.set_postfix(answered=len(collector.masks), refresh=False)
            bar.refresh()
    end = time.time() + 2.0
    while time.time() < end:
        executor.spin_once(timeout_sec=0.05)
    stop.set()

    conf, latencies, answered_at = _evaluate(sent, collector, scenes)
    pictures = _write_pictures(out, collector, sent, scenes, 6)
    plot = _plot(out, sent, latencies, answered_at, args.rate) if len(latencies) else None
    duration = sent[-1][2] - sent[0][2] if len(sent) > 1 else 0.0
    from jetson_seg.scenes import CLASS_NAMES
    summary = {
        'camera_rate_hz': args.rate, 'duration_s': round(duration, 2),
        'published': len(sent), 'answered': int(len(latencies)),
        'dropped': len(sent) - int(len(latencies)),
        'achieved_fps': round(len(latencies) / duration, 2) if duration else 0.0,
        'latency_ms': {p: round(float(np.percentile(latencies, q)), 2)
                       for p, q in (('p50', 50), ('p90', 90), ('p99', 99), ('max', 100))}
        if len(latencies) else {},
        'mean_iou': round(conf.mean_iou(), 4),
        'iou': {n: round(float(v), 4) for n, v in zip(CLASS_NAMES, conf.iou())},
        'node_diagnostics': collector.diagnostics,
        'pictures': pictures, 'plot': plot,
    }
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    _print_summary(summary, out)
    node.destroy_node()
    rclpy.try_shutdown()


def _print_summary(summary: dict, out: Path) -> None:
    lat = summary['latency_ms']
    diag = summary['node_diagnostics']
    rows = [
        ('camera rate', f'{summary["camera_rate_hz"]:g} Hz for {summary["duration_s"]} s'),
        ('published / answered', f'{summary["published"]} / {summary["answered"]}'),
        ('dropped (newest frame wins)', f'{summary["dropped"]}'),
        ('achieved fps', f'{summary["achieved_fps"]}'),
        ('latency p50 / p90 / p99 / max',
         ' / '.join(f'{lat.get(k, float("nan"))} ms' for k in ('p50', 'p90', 'p99', 'max'))),
        ('mIoU vs ground truth', f'{summary["mean_iou"]}'),
        ('per-class IoU', ', '.join(f'{k} {v}' for k, v in summary['iou'].items())),
        ('node engine', diag.get('engine', '?')),
        ('node stage medians (ms)', ', '.join(f'{k.split(".")[1]} {v}' for k, v in diag.items()
                                              if k.startswith('stage_ms.'))),
    ]
    width = max(len(r[0]) for r in rows)
    print('\njetson_seg demo results')
    for name, value in rows:
        print(f'  {name:<{width}}  {value}')
    print(f'\npictures, plot and summary.json in {out}/')


if __name__ == '__main__':
    main()
