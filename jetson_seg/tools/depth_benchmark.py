"""What the 3D outputs cost a frame, and how robust statistics compare (issue 26).

    python -m jetson_seg.tools.depth_benchmark [--frames 300] [--objects 5]
    python -m jetson_seg.tools.depth_benchmark --compare [--scenes 60] [--true-masks] [--on-wall]
        [--sharp-edges] [--noise 0.001] [--depth-scale 0.5] [--scene-seed 2026] [--model-path PATH]
    python -m jetson_seg.tools.depth_benchmark --picture output/depth/point_cloud.png [--seed 3]

Cost: generated 640x480 RGB-D frames (training/depth_scenes.py) with `--objects` objects, their
true masks and regions made beforehand; wall (time.perf_counter) and CPU (time.thread_time)
medians on one thread (OpenCV too): decoding a 16UC1 message, locate_objects for every region,
and from its results the cloud at strides 1, 2 and 4, filtered (object_points, the default)
and unfiltered (labelled_points with ids), each with depth at full and at half resolution.

Compare: the default model (LiteRT, one thread) segments generated frames and each region's 3D
box is made by the chosen statistic (locate_objects, with and without growing the outline) and
by simpler ones on the same points; errors against the truth in issue 26's terms (centre depth
%, sideways mm per metre, size %). `--on-wall`: the objects lie on the wall (depth_scenes);
`--sharp-edges`: a pixel across an edge reads the side covering most of it, never a mix (a
sensor without flying pixels).

Picture: one generated frame segmented by the default model, beside its point cloud
(segmentation/points at stride 2, filtered as the node's default, coloured by class) and its
3D boxes (detections_3d), drawn with matplotlib in the camera's optical frame, zoomed on the
boxes; written as a 256-colour PNG (small enough for the repository).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from types import SimpleNamespace

import cv2
import numpy as np

from jetson_seg.training.depth_scenes import (DepthSceneSpec, box_errors, depth_scene_stream,
                                              match_regions, millimetres)
from jetson_seg.vision.camera_model import CameraModel
from jetson_seg.vision.depth import (DepthParams, labelled_points, locate_objects,
                                     object_points, region_pixels)
from jetson_seg.vision.image_conversion import DecodedImage, decode_depth
from jetson_seg.vision.postprocess import find_regions

WARMUP = 20


def _message(metres: np.ndarray) -> SimpleNamespace:
    """A 16UC1 depth message (duck typed), millimetres with 0 for no reading."""
    mm = millimetres(metres)
    return SimpleNamespace(encoding='16UC1', width=mm.shape[1], height=mm.shape[0],
                           step=mm.shape[1] * 2, is_bigendian=0, data=mm.tobytes())


def _ms(run, items: list, frames: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of `run(item)` over `frames` calls cycling `items`.

    The CPU time (this thread's) is what the work costs when other processes share the cores
    (this machine is shared: the wall time then includes waiting for a core).
    """
    wall, cpu = [], []
    for k in range(frames + WARMUP):
        start, start_cpu = time.perf_counter(), time.thread_time()
        run(items[k % len(items)])
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return float(np.median(wall[WARMUP:])) * 1e3, float(np.median(cpu[WARMUP:])) * 1e3


def time_outputs(frames: int, objects: int, scale: float, scenes: int = 20) -> dict:
    """Per-frame (wall, CPU) milliseconds of each 3D output, depth at `scale` of 640x480.

    Also 'regions found' and 'points at stride 1', the mean counts per frame.
    """
    spec = DepthSceneSpec(depth_scale=scale, min_objects=objects, max_objects=objects)
    stream = depth_scene_stream(1, spec)
    made = [next(stream) for _ in range(scenes)]
    items = [(s, _message(s.depth), find_regions(s.mask, None, 4, 32)) for s in made]
    decoded = [(s, decode_depth(msg), found) for s, msg, found in items]
    out = {'decode 16UC1': _ms(lambda item: decode_depth(item[1]), items, frames),
           'detections_3d': _ms(lambda item: locate_objects(
               item[0].mask, item[2], (640, 480), item[1], item[0].depth_camera),
               decoded, frames)}
    # the node locates the objects once for both outputs: the clouds start from its results
    located = [(s, d, locate_objects(s.mask, found, (640, 480), d, s.depth_camera),
                list(range(1, len(found) + 1))) for s, d, found in decoded]
    for stride in (1, 2, 4):
        out[f'points stride {stride}'] = _ms(lambda item: object_points(
            item[2], item[3], item[1], item[0].depth_camera, stride), located, frames)
        out[f'unfiltered stride {stride}'] = _ms(lambda item: labelled_points(
            item[0].mask, item[1], item[0].depth_camera, stride, item[2], item[3]),
            located, frames)
    out['regions found'] = float(np.mean([len(found) for _, _, found in items]))
    out['points at stride 1'] = float(np.mean([len(object_points(
        objects, ids, d, s.depth_camera)) for s, d, objects, ids in located]))
    out['unfiltered at stride 1'] = float(np.mean([len(labelled_points(
        s.mask, d, s.depth_camera)) for s, d, _ in decoded]))
    return out


def _box(points: np.ndarray, pitch: float, camera: CameraModel):
    lo, hi = points.min(0), points.max(0)
    return (lo + hi) / 2, hi - lo + np.array([pitch / camera.fx, pitch / camera.fy, 0.0])


def _points(z: np.ndarray, chosen: np.ndarray, left: int, top: int,
            camera: CameraModel) -> np.ndarray:
    v, u = np.nonzero(chosen)
    depth = z[chosen]
    return np.stack([(u + left - camera.cx) / camera.fx * depth,
                     (v + top - camera.cy) / camera.fy * depth, depth], 1)


def _mean(z, inside, left, top, camera):
    """Mean of the mask's points, box from their min/max: what a first version would do."""
    points = _points(z, inside & np.isfinite(z), left, top, camera)
    center = points.mean(0)
    _, size = _box(points, center[2], camera)
    return center, size


def _percentiles(z, inside, left, top, camera):
    """Median centre, box from the 2nd-98th percentiles (a share of outliers cut each side)."""
    points = _points(z, inside & np.isfinite(z), left, top, camera)
    lo, hi = np.percentile(points, [2, 98], axis=0)
    return np.median(points, 0), hi - lo


def _eroded(z, inside, left, top, camera):
    """The mask eroded by 2 px (off the edge), min/max box grown back by the 2 px."""
    core = cv2.erode(inside.view(np.uint8), np.ones((5, 5), np.uint8),
                     borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    points = _points(z, core & np.isfinite(z), left, top, camera)
    center, size = _box(points, float(np.median(points[:, 2])), camera)
    return center, size + np.array([4 / camera.fx, 4 / camera.fy, 0.0]) * center[2]


def _band(z, inside, left, top, camera):
    """Points within the median-depth band (as locate_objects), their raw min/max box."""
    found = inside & np.isfinite(z)
    median = float(np.median(z[found]))
    rows, cols = np.nonzero(inside)
    lateral = max(np.ptp(cols) + 1, np.ptp(rows) + 1) / camera.fx * median
    points = _points(z, found & (np.abs(z - median) <= max(0.5 * lateral, 0.05)), left, top,
                     camera)
    return _box(points, median, camera)


#: The simpler statistics the chosen one is compared with.
STATISTICS = {'mean, min/max': _mean, 'median, 2-98 percentiles': _percentiles,
              'eroded 2 px, min/max': _eroded, 'median band, min/max': _band}


def compare(scenes: int, true_masks: bool = False, spec: DepthSceneSpec = DepthSceneSpec(),
            seed: int = 2026, model_path: str = '') -> dict[str, np.ndarray]:
    """Errors (depth, lateral, size, all in goal) of every statistic, per object.

    On a model's masks and regions (`model_path`, '' = the default model, served by LiteRT on
    one thread), or with `true_masks` the generator's; `spec` draws the frames (objects on the
    wall, depth at half resolution, edges that read one side or the other).
    """
    from jetson_seg.model_loader import open_model
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

    engine, info = open_model(model_path, 'litert', threads=1)
    pipeline = SegmentationPipeline(engine, info, PipelineConfig())
    stream = depth_scene_stream(seed, spec)
    chosen_names = ('locate_objects (chosen)', 'same, grow_px 0')
    errors: dict[str, list] = {name: [] for name in [*chosen_names, *STATISTICS]}
    for _ in range(scenes):
        scene = next(stream)
        if true_masks:
            mask, found = scene.mask, find_regions(scene.mask, None, 4, 32)
        else:
            result = pipeline.run(DecodedImage(scene.image, 'rgb'),
                                  Wanted(mask=False, color_mask=False, overlay=False))
            mask, found = result.class_ids, result.regions
        depth = decode_depth(_message(scene.depth))
        located = [{o.region: o for o in locate_objects(mask, found, (640, 480), depth,
                                                        scene.depth_camera, params)}
                   for params in (DepthParams(), DepthParams(grow_px=0))]
        metres = depth.metres()
        pairs = match_regions([(r.x0, r.y0, r.x1, r.y1, r.class_id) for r in found],
                              scene.objects)
        for t, r in pairs.items():
            if r not in located[0]:
                continue
            truth = scene.objects[t]
            for name, boxes in zip(chosen_names, located):
                errors[name].append(box_errors(boxes[r].center, boxes[r].size, truth))
            if spec.depth_scale != 1.0:  # the other statistics read depth on the mask's grid
                continue
            left, top, crop = region_pixels(mask, found[r], (640, 480))
            window = metres[top:top + crop.shape[0], left:left + crop.shape[1]]
            for name, statistic in STATISTICS.items():
                errors[name].append(box_errors(*statistic(window, crop, left, top,
                                                          scene.depth_camera), truth))
    engine.close()
    return {name: np.array([(e.depth, e.lateral, e.size, e.within()) for e in found])
            for name, found in errors.items() if found}


def _segment(scene):
    """The default model's class mask and regions of a generated frame (LiteRT, one thread)."""
    from jetson_seg.model_loader import open_model
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

    engine, info = open_model('', 'litert', threads=1)
    try:
        result = SegmentationPipeline(engine, info, PipelineConfig()).run(
            DecodedImage(scene.image, 'rgb'), Wanted(mask=False, color_mask=False, overlay=False))
    finally:
        engine.close()
    return result.class_ids.copy(), result.regions


def _drawn(cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cloud's axes as drawn: x, depth z, and -y (up)."""
    return cloud['x'], cloud['z'], -cloud['y']


def _box_edges(center, size) -> list[np.ndarray]:
    """The 12 edges of an axis-aligned box, each a 2x3 array of its ends."""
    corners = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5)
                        for sz in (-0.5, 0.5)]) * np.asarray(size) + np.asarray(center)
    return [corners[[a, b]] for a in range(8) for b in range(a + 1, 8)
            if bin(a ^ b).count('1') == 1]


def picture(path: str, seed: int, stride: int = 2) -> str:
    """Draw one frame, its labelled cloud and its 3D boxes into the PNG at `path`."""
    scene = next(depth_scene_stream(seed, DepthSceneSpec(min_objects=4, max_objects=5)))
    mask, found = _segment(scene)
    depth = decode_depth(_message(scene.depth))
    located = locate_objects(mask, found, (640, 480), depth, scene.depth_camera)
    ids = list(range(1, len(found) + 1))
    points = object_points(located, ids, depth, scene.depth_camera, stride)
    every = labelled_points(mask, depth, scene.depth_camera, stride, located, ids)
    draw_cloud(path, scene.image, points, [(o.center, o.size) for o in located],
               f'{len(found)} regions found, {len(located)} located in 3D',
               f'segmentation/points, stride {stride}')
    return f'{path}: {len(points)} points ({len(every)} unfiltered), {len(located)} of ' \
           f'{len(found)} regions located'


def draw_cloud(path: str, image: np.ndarray, points: np.ndarray, boxes: list,
               found: str, cloud: str) -> None:
    """A colour frame beside its labelled cloud (POINT_DTYPE) and 3D (centre, size) boxes.

    Zoomed on the boxes: stray points (mask edges on the wall behind) are counted, not drawn.
    `found` and `cloud` caption the two panels.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from pathlib import Path

    from PIL import Image

    from jetson_seg.tools.report import save_figure
    from jetson_seg.training.scenes import CLASS_COLORS, CLASS_NAMES

    lo = np.min([np.subtract(c, np.divide(s, 2)) for c, s in boxes], 0) - 0.15
    hi = np.max([np.add(c, np.divide(s, 2)) for c, s in boxes], 0) + 0.15
    hi[2] += 0.3
    xyz = np.stack([points['x'], points['y'], points['z']], 1)
    shown = points[((xyz >= lo) & (xyz <= hi)).all(1)]
    fig = plt.figure(figsize=(10.5, 4.2))
    left = fig.add_subplot(1, 2, 1)
    left.imshow(image)
    left.set_title(f'colour frame: {found}', fontsize=10)
    left.axis('off')
    ax = fig.add_subplot(1, 2, 2, projection='3d')
    # optical frame (x right, y down, z forward) drawn with z as depth and -y up
    colours = np.array(CLASS_COLORS, np.float32) / 255
    for cls in np.unique(shown['label']):
        chosen = shown[shown['label'] == cls]
        ax.scatter(*_drawn(chosen), s=0.6, color=colours[cls], depthshade=False,
                   label=f'{CLASS_NAMES[cls]}')
    for center, size in boxes:
        for edge in _box_edges(center, size):
            ax.plot(edge[:, 0], edge[:, 2], -edge[:, 1], color='k', linewidth=0.8)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[2], hi[2])
    ax.set_zlim(-hi[1], -lo[1])
    ax.set_box_aspect(hi[[0, 2, 1]] - lo[[0, 2, 1]])  # metres alike on every axis
    ax.set_xlabel('x (m)')
    ax.set_ylabel('z, depth (m)')
    ax.set_zlabel('-y (m)')
    ax.view_init(elev=18, azim=-70)
    ax.legend(loc='upper left', fontsize=7, markerscale=8)
    ax.set_title(f'{cloud} ({len(points)}; {len(points) - len(shown)} far off not drawn), '
                 f'detections_3d boxes', fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, Path(path))
    with Image.open(path) as drawn:
        drawn.convert('RGB').quantize(256).save(path, optimize=True)


def _cpu() -> str:
    """The processor's model name (Linux), else what platform knows."""
    try:
        with open('/proc/cpuinfo') as info:
            return next(line.split(':', 1)[1].strip() for line in info
                        if line.startswith('model name'))
    except (OSError, StopIteration):
        return f'{platform.processor()} {platform.machine()}'.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--objects', type=int, default=5)
    parser.add_argument('--compare', action='store_true')
    parser.add_argument('--scenes', type=int, default=60)
    parser.add_argument('--true-masks', action='store_true',
                        help='compare on the generator\'s masks instead of the model\'s')
    parser.add_argument('--on-wall', action='store_true',
                        help='compare on scenes whose objects lie on the wall')
    parser.add_argument('--noise', type=float, default=DepthSceneSpec.noise,
                        help='compare with this depth noise (m of sigma at 1 m, x depth^2)')
    parser.add_argument('--sharp-edges', action='store_true',
                        help='compare with depth whose edge pixels read one side, never a mix')
    parser.add_argument('--depth-scale', type=float, default=1.0,
                        help='compare with depth at this fraction of the colour resolution')
    parser.add_argument('--scene-seed', type=int, default=2026, help='first compared frame\'s')
    parser.add_argument('--model-path', default='',
                        help='compare on this model\'s masks (\'\' = the default model)')
    parser.add_argument('--picture', metavar='PNG',
                        help='draw a frame\'s labelled point cloud and 3D boxes into this file')
    parser.add_argument('--seed', type=int, default=3, help='the pictured frame\'s')
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    if args.picture:
        print(picture(args.picture, args.seed))
        return
    machine = f'{_cpu()} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}), Python ' \
              f'{platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}'
    if args.compare:
        spec = DepthSceneSpec(on_wall=args.on_wall, depth_scale=args.depth_scale,
                              mixed_edges=not args.sharp_edges, noise=args.noise)
        found = compare(args.scenes, args.true_masks, spec, args.scene_seed, args.model_path)
        masks = 'the true' if args.true_masks else \
            f'{args.model_path}\'s' if args.model_path else 'the default model\'s'
        where = ' (objects on the wall)' if args.on_wall else ''
        where += ' (sharp depth edges)' if args.sharp_edges else ''
        where += f', depth noise {args.noise * 1e3:g} mm x z^2'
        where += f', depth at {args.depth_scale:g} of the colour size, seed {args.scene_seed}'
        print(f'Robust statistics on {masks} masks, {args.scenes} generated frames{where} '
              f'({len(next(iter(found.values())))} objects located), {machine}')
        print(f'{"statistic":<26}{"goal":>6}{"depth":>7}{"side":>6}{"size":>6}'
              f'{"depth % p95/max":>17}{"mm/m p95/max":>15}{"size % p95/max":>17}')
        for name, e in found.items():
            p95, worst = np.percentile(e[:, :3], 95, axis=0), e[:, :3].max(0)
            shares = (e[:, 3].mean(), (e[:, 0] <= 0.02).mean(), (e[:, 1] <= 0.01).mean(),
                      (e[:, 2] <= 0.05).mean())
            print(f'{name:<26}' + ''.join(f'{v:>6.0%}' for v in shares) +
                  f'{p95[0]:>8.2%}/{worst[0]:<8.2%}{p95[1] * 1e3:>6.1f}/{worst[1] * 1e3:<7.1f}'
                  f'{p95[2]:>8.1%}/{worst[2]:<8.1%}')
        return
    print(f'3D outputs per 640x480 frame, {args.objects} objects, median of {args.frames} '
          f'frames, one thread, {machine}')
    for scale in (1.0, 0.5):
        found = time_outputs(args.frames, args.objects, scale)
        timed = [f'{name} {value[0]:.3f} ({value[1]:.3f})' for name, value in found.items()
                 if isinstance(value, tuple)]
        print(f'depth {round(640 * scale)}x{round(480 * scale)}, median ms wall (CPU): '
              f'{", ".join(timed)} ({found["regions found"]:.1f} regions; at stride 1 '
              f'{found["points at stride 1"]:.0f} points filtered, '
              f'{found["unfiltered at stride 1"]:.0f} unfiltered)')


if __name__ == '__main__':
    main()
