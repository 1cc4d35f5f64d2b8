"""What tracking costs a frame: RegionTracker.update with N moving objects (issue 25: <= 0.3 ms).

    python -m jetson_seg.tools.track_benchmark [--objects 1,5,10,20] [--frames 5000]

Objects of the default task's classes, 20-100 px, each of its own colour (read with a little
noise, as region_colors would), move 3-25 px a frame at 120 Hz and bounce in a 640x480 frame;
one region in 20 is missed, as a detector would. The regions are made beforehand,
so only the tracker is timed (time.perf_counter around each update, after 200 warm-up frames).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from jetson_seg.vision.postprocess import Region
from jetson_seg.vision.tracker import RegionTracker, TrackerParams

WARMUP = 200


def moving_regions(objects: int, frames: int, seed: int = 0, width: int = 640,
                   height: int = 480) -> list[list[Region]]:
    """Each frame's regions of `objects` bouncing boxes (about 5% missed)."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(20, 100, objects)
    pos = rng.uniform(size[:, None] / 2, [width, height] - size[:, None] / 2)
    heading = rng.uniform(0, 2 * np.pi, objects)
    vel = rng.uniform(3, 25, objects)[:, None] * np.stack([np.cos(heading), np.sin(heading)], 1)
    classes = rng.integers(1, 4, objects)
    colors = rng.uniform(0, 1, (objects, 3))
    out = []
    for _ in range(frames):
        pos += vel
        low, high = size[:, None] / 2, np.array([width, height]) - size[:, None] / 2
        vel = np.where((pos < low) | (pos > high), -vel, vel)
        pos = np.clip(pos, low, high)
        keep = rng.random(objects) >= 0.05
        seen = np.clip(colors + rng.normal(0, 0.02, colors.shape), 0, 1)
        out.append([Region(int(c), int(x - s / 2), int(y - s / 2), int(x + s / 2),
                           int(y + s / 2), int(s * s), 0.9, tuple(color.tolist()))
                    for (x, y), s, c, k, color in zip(pos, size, classes, keep, seen) if k])
    return out


def time_updates(objects: int, frames: int, params: TrackerParams = TrackerParams()) -> dict:
    """Milliseconds per update: median, 99th percentile, mean."""
    regions = moving_regions(objects, frames + WARMUP)
    tracker = RegionTracker(params)
    times = []
    for k, frame in enumerate(regions):
        start = time.perf_counter()
        tracker.update(frame, k / 120)
        times.append(time.perf_counter() - start)
    ms = np.array(times[WARMUP:]) * 1e3
    return {'objects': objects, 'ms_p50': round(float(np.median(ms)), 4),
            'ms_p99': round(float(np.percentile(ms, 99)), 4),
            'ms_mean': round(float(ms.mean()), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--objects', default='1,5,10,20')
    parser.add_argument('--frames', type=int, default=5000)
    args = parser.parse_args(argv)
    print(f'RegionTracker.update, {args.frames} frames at 120 Hz, {platform.processor() or ""} '
          f'{platform.machine()}, Python {platform.python_version()}')
    print(f'{"objects":>8}{"p50 ms":>10}{"p99 ms":>10}{"mean ms":>10}')
    for n in (int(v) for v in args.objects.split(',')):
        r = time_updates(n, args.frames)
        print(f'{n:>8}{r["ms_p50"]:>10.4f}{r["ms_p99"]:>10.4f}{r["ms_mean"]:>10.4f}')


if __name__ == '__main__':
    main()
