"""Demo: the segmentation node on a generated 640x480 camera stream, measured and pictured.

    python -m jetson_seg.tools.demo --rate 120 --duration 20 --output output/demo

Starts the node in its own process (as `ros2 run` would), publishes generated scenes at the given
rate from this process, collects every output over Fast DDS, then prints achieved fps, latency
percentiles, dropped frames and mIoU against the scenes' ground truth, and writes overlay
pictures, a latency/fps plot and summary.json to the output folder. Then tracking: generated
sequences of moving objects (120 Hz stamps) go to the same node in lockstep, every frame and one
in three, scored by evaluate_tracking (IDF1, MOTA, HOTA, switches); pictures of the overlay
with the node's track ids and headings are written beside the others. Last, objects in 3D:
generated RGB-D frames (colour, depth, depth/camera_info) go to the same node, its 3D boxes are
scored against the generator's truth and its point cloud of the frame with the most objects
in 3D is drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from jetson_seg.allocator import keep_large_allocations


def _write_pictures(out: Path, records: list, scene_of: dict, scenes, count: int) -> list[str]:
    from jetson_seg.vision.image_conversion import decode_image, to_rgb
    from jetson_seg.training.scenes import CLASS_COLORS

    palette = np.array(CLASS_COLORS, np.uint8)
    written = []
    with_overlay = sorted((r for r in records if 'overlay' in r.answers), key=lambda r: r.key)
    for n, record in enumerate(with_overlay[:count]):
        if record.mask is None:
            continue
        overlay = to_rgb(decode_image(record.answers['overlay']))
        scene = scenes[scene_of[record.key]]
        panel = np.vstack([np.hstack([scene.image, overlay]),
                           np.hstack([palette[scene.mask], palette[record.mask]])])
        for text, xy in (('input', (10, 30)), ('overlay (node)', (650, 30)),
                         ('ground truth', (10, 510)), ('mask (node)', (650, 510))):
            cv2.putText(panel, text, xy, cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        path = out / f'frame_{n:02d}.png'
        cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        written.append(path.name)
    return written


#: Frames of the first tracking sequence (every frame sent) whose overlay is kept as a picture.
TRACK_PICTURES = (60, 120, 180)


def _track(client, out: Path, seeds: list[int], frames: int) -> tuple[dict, list[str]]:
    """The node's tracking figures on the sequences `seeds`; pictures of its ids."""
    from jetson_seg.tools.evaluate_tracking import evaluate_node, generated_frames
    from jetson_seg.training.sequences import SequenceSpec
    from jetson_seg.vision.image_conversion import decode_image, to_rgb

    spec = SequenceSpec(frames=frames)
    plays = [lambda start_ns, seed=seed: generated_frames(seed, spec, start_ns, 'demo_camera')
             for seed in seeds]
    written: list[str] = []

    def picture(record, index: int) -> None:
        if len(written) < len(TRACK_PICTURES) and index == TRACK_PICTURES[len(written)]:
            path = out / f'track_{len(written):02d}.png'
            overlay = to_rgb(decode_image(record.answers['overlay']))
            cv2.imwrite(str(path), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
            written.append(path.name)
    return evaluate_node(client, plays, [1, 3], on_answer=picture), written


def _objects_in_3d(node_proc, out: Path, frames: int, seed: int) -> tuple[dict, str]:
    """Generated RGB-D frames to the node in lockstep: its 3D boxes scored, its cloud drawn."""
    import time

    from jetson_seg.tools.depth_benchmark import draw_cloud
    from jetson_seg.tools.node_client import NodeClient
    from jetson_seg.tools.rgbd_client import RgbdClient, located_errors
    from jetson_seg.training.depth_scenes import depth_scene_stream
    from jetson_seg.vision.depth import POINT_DTYPE

    client = NodeClient.on_own_node('demo_rgbd', outputs=('mask', 'detections'))
    client.connect(node_proc=node_proc)
    rgbd = RgbdClient(client, frame_id='demo_camera')
    if not rgbd.ready():
        raise RuntimeError('the node did not subscribe depth or publish the 3D outputs')
    stream, errors, shown = depth_scene_stream(seed), [], None
    for _ in range(frames):
        scene = next(stream)
        answer = rgbd.exchange(scene, time.time_ns())
        errors += [(e.depth, e.lateral, e.size) for e in located_errors(scene, answer)]
        if shown is None or len(answer.detections_3d or ()) > len(shown[1].detections_3d or ()):
            shown = scene, answer  # the frame with the most objects in 3D is drawn
    client.close()
    scene, answer = shown
    found = np.array(errors).reshape(-1, 3)
    boxes = [((d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.center.position.z),
              (d.bbox.size.x, d.bbox.size.y, d.bbox.size.z)) for d in answer.detections_3d]
    points = np.frombuffer(bytes(answer.points.data), POINT_DTYPE)
    draw_cloud(str(out / 'point_cloud.png'), scene.image, points, boxes,
               f'{len(answer.detections)} detections, {len(boxes)} in 3D (the node)',
               'segmentation/points (the node)')
    figures = {'frames': frames, 'objects': len(found),
               'depth_within_2pct': round(float((found[:, 0] <= 0.02).mean()), 3),
               'sideways_within_1cm_per_m': round(float((found[:, 1] <= 0.01).mean()), 3),
               'sizes_within_5pct': round(float((found[:, 2] <= 0.05).mean()), 3),
               'worst_depth_sideways_size': [round(float(v), 4) for v in found.max(0)]}
    return figures, 'point_cloud.png'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rate', type=float, default=120.0, help='camera rate (Hz)')
    parser.add_argument('--duration', type=float, default=20.0, help='seconds of streaming')
    parser.add_argument('--frames', type=int, default=120, help='distinct generated frames')
    parser.add_argument('--seed', type=int, default=2024)
    parser.add_argument('--output', default='output/demo')
    parser.add_argument('--domain-id', type=int, default=77)
    parser.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra node parameter, e.g. --node-param engine:=tf')
    parser.add_argument('--track-sequences', type=int, default=2,
                        help='tracking sequences sent after the stream (0: none)')
    parser.add_argument('--track-frames', type=int, default=240, help='frames a sequence')
    parser.add_argument('--depth-frames', type=int, default=12,
                        help='RGB-D frames sent last for objects in 3D (0: none)')
    args = parser.parse_args(argv)
    keep_large_allocations()  # this process sends and receives frames too

    import rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from tqdm import tqdm

    from jetson_seg.ros.messages import image_msg
    from jetson_seg.tools.node_client import NodeClient, NodeUnderTest, isolated_env
    from jetson_seg.tools.report import plot_run, summarize, table, write_json
    from jetson_seg.training.scenes import CLASS_NAMES, scene_stream

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    env = isolated_env(args.domain_id)
    params = dict(item.split(':=', 1) for item in args.node_param)
    node_proc = NodeUnderTest(params, out / 'node.log', env)
    try:
        stream = scene_stream(args.seed)
        scenes = [next(stream) for _ in tqdm(range(args.frames), desc='generating frames')]
        messages: list[Image] = [image_msg(Header(frame_id='demo_camera'), s.image, 'rgb8')
                                 for s in scenes]
        rclpy.init(args=[])  # our flags are not ROS arguments
        client = NodeClient.on_own_node('demo_camera',  # every output, as a robot's viewer
                                        keep_at_most={'overlay': 6, 'color_mask': 0})
        print('waiting for the node to load the model and subscribe ...', flush=True)
        client.connect(node_proc=node_proc, zero_counters=True)
        total = int(args.rate * args.duration)
        with tqdm(total=total, desc=f'camera {args.rate:g} Hz', unit='frame') as bar:
            def progress(sent: int) -> None:
                if sent % 30 == 0 or sent == total:
                    bar.set_postfix(answered=client.answered(), refresh=False)
                    bar.update(sent - bar.n)
            scene_of = client.stream_camera(messages, args.rate, total, on_frame=progress)

        records = sorted(client.records.values(), key=lambda r: r.sent_at)
        figures = client.figures()
        summary = summarize(records, lambda k: (scenes[scene_of[k]].mask,
                                                scenes[scene_of[k]].boxes),
                            CLASS_NAMES, int(figures.get('rejected', 0)))
        summary['node_diagnostics'] = figures
        summary['pictures'] = _write_pictures(out, records, scene_of, scenes, 6)
        plot_run(records, out / 'latency_fps.png',
                 f'jetson_seg node, generated 640x480 camera at {args.rate:g} Hz')
        summary['plot'] = 'latency_fps.png'
        client.close()  # the tracking client asks for detections and overlays only
        if args.track_sequences > 0:
            seeds = list(range(args.seed, args.seed + args.track_sequences))
            print(f'tracking: {len(seeds)} sequences of {args.track_frames} frames in lockstep, '
                  'every frame, then one in three ...', flush=True)
            tracker = NodeClient.on_own_node('demo_tracking', outputs=('detections', 'overlay'))
            tracker.connect(node_proc=node_proc)
            summary['tracking'], pictures = _track(tracker, out, seeds, args.track_frames)
            summary['pictures'] += pictures
            tracker.close()
        if args.depth_frames > 0:
            print(f'objects in 3D: {args.depth_frames} generated RGB-D frames (colour, 16UC1 '
                  'depth, depth/camera_info) in lockstep ...', flush=True)
            summary['objects_3d'], picture = _objects_in_3d(node_proc, out, args.depth_frames,
                                                            args.seed)
            summary['pictures'].append(picture)
        write_json(summary, out / 'summary.json')
        print()
        print(table(summary, f'jetson_seg demo: camera {args.rate:g} Hz for '
                             f'{args.duration:g} s, engine {figures.get("engine")}'))
        stages = {k.split('.', 1)[1]: v for k, v in figures.items() if k.startswith('stage_ms.')}
        print('  node stage medians (ms)  ' + ', '.join(f'{k} {v}' for k, v in stages.items()))
        if 'tracking' in summary:
            from jetson_seg.tools.evaluate_tracking import table as tracking_table

            print(f'\ntracking over DDS, {args.track_sequences} sequences of moving objects '
                  '(120 Hz stamps, lockstep; ms/frame = round trip):')
            print(tracking_table({'node': summary['tracking']}))
        if 'objects_3d' in summary:
            d3 = summary['objects_3d']
            print(f'\nobjects in 3D over DDS ({d3["objects"]} objects of {d3["frames"]} frames '
                  f'against the generator\'s truth): centre depth within 2% '
                  f'{d3["depth_within_2pct"]:.0%}, sideways within 1 cm/m '
                  f'{d3["sideways_within_1cm_per_m"]:.0%}, sizes within 5% '
                  f'{d3["sizes_within_5pct"]:.0%}; point_cloud.png')
        print(f'\npictures, plot and summary.json in {out}/')
        rclpy.try_shutdown()
    finally:
        node_proc.stop()


if __name__ == '__main__':
    main()
