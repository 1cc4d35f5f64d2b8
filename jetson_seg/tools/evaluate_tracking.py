"""Tracking quality on generated sequences: IDF1, MOTA, identity switches, HOTA.

    python -m jetson_seg.tools.evaluate_tracking --sequences 8 --frames 240
    python -m jetson_seg.tools.evaluate_tracking --source truth --keep 1,3 --output output/track
    python -m jetson_seg.tools.evaluate_tracking --node --sequences 8 --node-param threads:=2
    python -m jetson_seg.tools.evaluate_tracking --bag output/track_bag

Runs vision.tracker.RegionTracker, in this process, on the sequences of training/sequences.py
(120 Hz, 3-25 px a frame, bouncing, crossing, blurred) with the regions of one of two sources:
`truth` (each visible object's box with edge jitter, misses and false regions: the tracker
alone) or `pipeline` (the package's SegmentationPipeline with the default model on the rendered
frames: what the node would track). Each runs with every frame and with only one frame in
`keep` (the others left out, stamps still 1/120 s apart), scored on the frames kept. An object
showing fewer than MIN_VISIBLE pixels is not expected: a track on it is neither a hit nor a
false positive. Boxes match at IoU >= 0.5 (the MOTChallenge rule). Beside each source, its
ceiling: perfect identities on the same regions (OracleTracker), which separates what the
detector loses (misses, merged or split objects) from what the tracker loses.

`--node` scores the segmentation node itself over DDS instead: it starts the node in its own
process (or uses a running one, `--no-start-node`), sends each sequence's frames in lockstep
(every frame answered before the next is sent: none dropped by newest-frame-wins) with stamps
1/120 s apart, or only one frame in `keep` with the same stamps, and scores the published
detections that carry a track id. `--bag` plays a bag that `make_sample_bag --tracking` wrote,
scored against the identities beside it. HOTA (with DetA and AssA) is computed here from its
definition (py-motmetrics 1.4 has none), over the same boxes and ignored objects.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from jetson_seg.training.sequences import TRUTH_FILE, SequenceFrame, SequenceSpec, \
    TruthObject, read_truth, sequence_frames
from jetson_seg.vision.postprocess import Region
from jetson_seg.vision.tracker import RegionTracker, Track, TrackerParams

#: Pixels an object must show to be expected (the pipeline's default min_region_area).
MIN_VISIBLE = 32
#: Matching threshold between a track's box and an object's visible box.
MIN_IOU = 0.5
#: motmetrics' names of the figures reported, in report order.
METRICS = ('idf1', 'mota', 'num_switches', 'recall', 'precision', 'num_fragmentations',
           'num_false_positives', 'num_misses', 'num_objects', 'num_unique_objects')
SOURCES = ('truth', 'pipeline')


@dataclass(frozen=True)
class TruthNoise:
    """How ground-truth boxes are spoilt into regions: what a good detector still does."""

    jitter: float = 1.5  # px, standard deviation of each box edge
    miss: float = 0.03  # probability that a visible object gives no region in a frame
    false: float = 0.05  # false regions a frame (mean): random class, size and place


@dataclass
class Recorded:
    """One frame as the scoring needs it: stamp, objects and each source's regions."""

    stamp: float
    objects: list[TruthObject]
    regions: dict[str, list[Region]] = field(default_factory=dict)


def truth_regions(frame: SequenceFrame, rng: np.random.Generator,
                  noise: TruthNoise = TruthNoise()) -> list[Region]:
    """Regions a detector would give: the visible objects' boxes, spoilt by `noise`."""
    height, width = frame.mask.shape
    regions = []
    for obj in frame.objects:
        if obj.visible < MIN_VISIBLE or rng.random() < noise.miss:
            continue
        edges = np.asarray(obj.box, np.float64) + rng.normal(0, noise.jitter, 4)
        x0, y0, x1, y1 = (int(round(v)) for v in edges)
        x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
        x1, y1 = min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)
        regions.append(Region(obj.class_id, x0, y0, x1, y1, obj.visible, 1.0))
    for _ in range(rng.poisson(noise.false)):
        w, h = (int(v) for v in rng.integers(6, 40, 2))
        x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        regions.append(Region(int(rng.integers(1, 4)), x0, y0, x0 + w, y0 + h, w * h, 0.6))
    return regions


def pipeline_source(model_path: str = '', engine: str = 'auto',
                    threads: int = 1) -> Callable[[SequenceFrame], list[Region]]:
    """The package's own regions for a rendered frame (default model unless `model_path`)."""
    from jetson_seg.model_loader import open_model
    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted

    model, info = open_model(model_path, engine, threads=threads)
    pipeline = SegmentationPipeline(model, info, PipelineConfig())
    wanted = Wanted(mask=False, color_mask=False, overlay=False, detections=True)

    def regions(frame: SequenceFrame) -> list[Region]:
        return pipeline.run(DecodedImage(frame.image, 'rgb'), wanted).regions or []
    return regions


def record(seed: int, spec: SequenceSpec, sources: Sequence[str],
           noise: TruthNoise = TruthNoise(),
           pipeline: Callable[[SequenceFrame], list[Region]] | None = None) -> list[Recorded]:
    """Render the sequence `seed` once and keep what scoring needs (no images)."""
    rng = np.random.default_rng([seed, 25])  # the noise's own stream: the frames are seed's
    frames = []
    for frame in sequence_frames(seed, spec):
        item = Recorded(frame.stamp, frame.objects)
        if 'truth' in sources:
            item.regions['truth'] = truth_regions(frame, rng, noise)
        if 'pipeline' in sources:
            item.regions['pipeline'] = pipeline(frame) if pipeline else []
        frames.append(item)
    return frames


def _xywh(boxes: Iterable[tuple[float, float, float, float]]) -> np.ndarray:
    return np.array([(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes],
                    np.float64).reshape(-1, 4)


class OracleTracker:
    """Perfect identities for the regions a source gave: what no tracker can beat.

    Each region that matches a visible object (IoU >= MIN_IOU, one to one) gets that object's
    id, every other region a new id; so its figures are the ceiling the detector sets.
    """

    def __init__(self) -> None:
        self._fresh = itertools.count(1_000_000)
        self.objects: list[TruthObject] = []

    def update(self, regions: Sequence[Region], stamp: float) -> list[Track]:
        from scipy.optimize import linear_sum_assignment

        boxes = [(r.x0, r.y0, r.x1, r.y1) for r in regions]
        ids = [next(self._fresh) for _ in regions]
        objects = [o for o in self.objects if o.visible]
        if objects and regions:
            iou = 1 - _iou_distance(_xywh(o.box for o in objects), _xywh(boxes), 1.0)
            rows, cols = linear_sum_assignment(-iou)
            for row, col in zip(rows, cols):
                if iou[row, col] >= MIN_IOU:
                    ids[col] = objects[row].object_id
        return [Track(i, r.class_id, b, (0.0, 0.0), 0.0, 1, 0.0, k, r.score, k)
                for k, (i, r, b) in enumerate(zip(ids, regions, boxes))]


def _iou_distance(objects: np.ndarray, hypotheses: np.ndarray, limit: float) -> np.ndarray:
    """1 - IoU between xywh boxes, NaN beyond `limit` (motmetrics' convention)."""
    import motmetrics as mm

    return mm.distances.iou_matrix(objects, hypotheses, max_iou=limit)


#: What is scored of each frame's tracks: `regions`, one box per region with the id of the
#: track reported with it (the node's detections); `tracks`, every track seen, with its own box
#: (a track sharing a merged region: its predicted box moved into that region).
REPORTS = ('regions', 'tracks')


def reported(tracks: Sequence[Track], regions: Sequence[Region], report: str
             ) -> list[tuple[int, tuple[float, float, float, float]]]:
    """(track id, box) of the tracks `report` scores in one frame."""
    if report == 'tracks':
        return [(t.track_id, t.box) for t in tracks if t.within is not None]
    return [(t.track_id, (regions[t.region].x0, regions[t.region].y0, regions[t.region].x1,
                          regions[t.region].y1)) for t in tracks if t.region is not None]


def track_sequence(frames: Sequence[Recorded], source: str, params: TrackerParams | None,
                   keep: int = 1, report: str = 'regions'):
    """Run a fresh tracker on every `keep`-th frame; its frames Scored, update times (s).

    `params` None runs the OracleTracker instead.
    """
    tracker = RegionTracker(params) if params is not None else OracleTracker()
    scored = Scored()
    times = []
    for item in frames[::keep]:
        regions = item.regions[source]
        if isinstance(tracker, OracleTracker):
            tracker.objects = item.objects
        start = time.perf_counter()
        tracks = tracker.update(regions, item.stamp)
        times.append(time.perf_counter() - start)
        scored.add(item.objects, reported(tracks, regions, report))
    return scored, times


#: HOTA's localisation thresholds: IoU 0.05, 0.10, ... 0.95 (HOTA is their mean).
HOTA_ALPHAS = np.arange(1, 20) / 20


class Scored:
    """One sequence's frames scored, for motmetrics' figures and for HOTA.

    motmetrics' accumulator gives MOTA, IDF1 and switches; HOTA scores every IoU threshold,
    not only MIN_IOU, so each frame's full overlaps are kept too.
    """

    def __init__(self) -> None:
        import motmetrics as mm

        self.accumulator = mm.MOTAccumulator(auto_id=True)
        self.frames: list[tuple[list[int], list[int], np.ndarray]] = []  # objects, tracks, IoU

    def add(self, objects: Sequence[TruthObject],
            seen: Sequence[tuple[int, tuple[float, float, float, float]]]) -> None:
        """Score one frame's (track id, box) pairs against its objects.

        An object showing fewer than MIN_VISIBLE pixels is not expected, and a box on one is no
        false positive either.
        """
        expected = [o for o in objects if o.visible >= MIN_VISIBLE]
        ignored = [o for o in objects if 0 < o.visible < MIN_VISIBLE]
        if ignored and seen:
            overlap = _iou_distance(_xywh(o.box for o in ignored), _xywh(b for _, b in seen),
                                    1 - MIN_IOU)
            seen = [s for s, d in zip(seen, overlap.T) if np.all(np.isnan(d))]
        distance = _iou_distance(_xywh(o.box for o in expected), _xywh(b for _, b in seen), 1.0)
        object_ids, track_ids = [o.object_id for o in expected], [i for i, _ in seen]
        self.accumulator.update(object_ids, track_ids,
                                np.where(distance > 1 - MIN_IOU, np.nan, distance))
        self.frames.append((object_ids, track_ids, 1.0 - distance))

    def hota_counts(self) -> np.ndarray:
        """Per HOTA_ALPHAS: true positives, misses, false positives, and AssA x true positives.

        HOTA (Luiten et al., IJCV 2021) from its definition: in each frame objects and tracks
        are paired by Hungarian matching on IoU weighted by how well the two identities align
        over the whole sequence; a pair is a true positive at every threshold its IoU reaches;
        a true positive's association score is TPA / (TPA + FNA + FPA) of its two identities.
        """
        from scipy.optimize import linear_sum_assignment

        objects = {i: k for k, i in enumerate(sorted({i for f in self.frames for i in f[0]}))}
        tracks = {i: k for k, i in enumerate(sorted({i for f in self.frames for i in f[1]}))}
        frames = [(np.array([objects[i] for i in o], int), np.array([tracks[i] for i in t], int),
                   iou) for o, t, iou in self.frames]
        object_count, track_count = np.zeros(len(objects)), np.zeros(len(tracks))
        potential = np.zeros((len(objects), len(tracks)))
        for o, t, iou in frames:
            object_count[o] += 1
            track_count[t] += 1
            if iou.size:
                union = iou.sum(1, keepdims=True) + iou.sum(0, keepdims=True) - iou
                potential[o[:, None], t[None, :]] += np.where(union > 0, iou / np.maximum(
                    union, 1e-12), 0.0)
        alignment = potential / np.maximum(
            object_count[:, None] + track_count[None, :] - potential, 1e-12)
        pairs = np.zeros((len(HOTA_ALPHAS), len(objects), len(tracks)))
        for o, t, iou in frames:
            if not iou.size:
                continue
            rows, cols = linear_sum_assignment(-alignment[o[:, None], t[None, :]] * iou)
            for a, alpha in enumerate(HOTA_ALPHAS):
                kept = iou[rows, cols] >= alpha - 1e-9
                pairs[a, o[rows[kept]], t[cols[kept]]] += 1
        true = pairs.sum((1, 2))
        association = pairs / np.maximum(
            object_count[None, :, None] + track_count[None, None, :] - pairs, 1)
        return np.stack([true, object_count.sum() - true, track_count.sum() - true,
                         (pairs * association).sum((1, 2))], 1)


def score(sequences: Sequence[Sequence[Recorded]], source: str, params: TrackerParams | None,
          keep: int = 1, report: str = 'regions') -> dict:
    """The metrics over all `sequences` together (motmetrics' OVERALL) and the tracker's cost.

    `params` None scores the OracleTracker: the ceiling of the source's regions.
    """
    scored, times = [], []
    for frames in sequences:
        one, spent = track_sequence(frames, source, params, keep, report)
        scored.append(one)
        times += spent
    return summarize(scored) | {
        'frames': len(times), 'tracker_ms_mean': round(float(np.mean(times)) * 1e3, 4),
        'tracker_ms_p99': round(float(np.percentile(times, 99)) * 1e3, 4)}


def summarize(scored: Sequence[Scored]) -> dict:
    """The figures over all sequences together: motmetrics' OVERALL, HOTA, DetA and AssA.

    HOTA's counts are summed over sequences, AssA weighted by true positives, then each is
    the mean over HOTA_ALPHAS.
    """
    import motmetrics as mm

    summary = mm.metrics.create().compute_many(
        [s.accumulator for s in scored], metrics=list(METRICS),
        names=[str(i) for i in range(len(scored))], generate_overall=True)
    overall = summary.loc['OVERALL']
    figures = {name: (int(overall[name]) if name.startswith('num_')
                      else round(float(overall[name]), 4)) for name in METRICS}
    true, missed, false, assoc = sum(s.hota_counts() for s in scored).T
    deta = true / np.maximum(true + missed + false, 1)
    assa = assoc / np.maximum(true, 1)
    return figures | {'hota': round(float(np.sqrt(deta * assa).mean()), 4),
                      'deta': round(float(deta.mean()), 4),
                      'assa': round(float(assa.mean()), 4)}


def evaluate(seeds: Sequence[int], spec: SequenceSpec, sources: Sequence[str],
             keeps: Sequence[int], params: TrackerParams = TrackerParams(),
             pipeline: Callable[[SequenceFrame], list[Region]] | None = None,
             report: str = 'regions') -> dict:
    """Metrics for each source and keep: {source: {'every 1': {...}, 'every 3': {...}}}.

    Each source also gets '<source> ceiling': the OracleTracker on the same regions.
    """
    sequences = [record(seed, spec, sources, pipeline=pipeline) for seed in seeds]
    results = {}
    for source in sources:
        for name, tracker in ((source, params), (f'{source} ceiling', None)):
            results[name] = {f'every {keep}': score(sequences, source, tracker, keep, report)
                             for keep in keeps}
    return results


#: A frame to send to the node: its stamp key (ns), the message (or its CDR) and its objects.
Played = tuple[int, object, list[TruthObject]]

#: Stamp (s) of the first generated sequence played to the node; each next one starts
#: SEQUENCE_GAP s later, so the node's tracks of one have died before the next begins.
NODE_T0 = 1000
SEQUENCE_GAP = 100


def generated_frames(seed: int, spec: SequenceSpec, start_ns: int,
                     frame_id: str = 'camera') -> Iterator[Played]:
    """The sequence `seed` as rgb8 Image messages stamped from `start_ns` (needs rclpy)."""
    from std_msgs.msg import Header

    from jetson_seg.ros.interface import set_stamp
    from jetson_seg.ros.messages import image_msg

    for frame in sequence_frames(seed, spec):
        msg = image_msg(Header(frame_id=frame_id), frame.image, 'rgb8')
        yield set_stamp(msg.header, start_ns + round(frame.stamp * 1e9)), msg, frame.objects


def bag_frames(bag: Path, image_topic: str) -> Iterator[Played]:
    """A tracking bag's images (CDR, as recorded) and the objects its truth file gives them."""
    from jetson_seg.ros.serialized import stamp_key_of
    from jetson_seg.tools.bags import read_messages

    truth = read_truth(bag / TRUTH_FILE)
    for message in read_messages(bag, [image_topic]):
        key = stamp_key_of(message.cdr)
        yield key, message.cdr, truth[key]


def play_to_node(client, frames: Iterable[Played], keep: int = 1, timeout: float = 30.0,
                 on_answer: Callable[[object, int], None] | None = None):
    """Send every `keep`-th frame in lockstep; the node's answers scored, and frames sent.

    Returns the frames Scored and how many were sent.

    A frame's detections with a track id are scored (an empty id: not confirmed yet, so not
    reported); the next frame goes once every output `client` collects has answered.
    `on_answer(record, index)` sees each answered frame's node_client.FrameRecord.
    """
    from jetson_seg.ros.messages import detection_boxes

    scored = Scored()
    wanted = set(client.outputs)
    index = -1
    for index, (key, payload, objects) in enumerate(itertools.islice(frames, 0, None, keep)):
        record = client.send(payload, key)
        if not client.spin_until(lambda: wanted <= record.arrived_at.keys(), timeout):
            raise TimeoutError(f'the node did not answer frame {index} (stamp key {key}) on '
                               f'{sorted(wanted - record.arrived_at.keys())} in {timeout} s')
        msg = record.answers['detections']
        scored.add(objects, [(int(det.id), box[:4]) for det, box in
                             zip(msg.detections, detection_boxes(msg)) if det.id])
        if on_answer is not None:
            on_answer(record, index)
        record.answers.clear()  # kept only while needed: overlays are large
    return scored, index + 1


def evaluate_node(client, plays: Sequence[Callable[[int], Iterable[Played]]],
                  keeps: Sequence[int], on_answer=None) -> dict:
    """The node's figures for each keep: {'every 1': {...}, ...}, each play's tracks fresh.

    `plays[i](start_ns)` gives the frames of one sequence stamped from `start_ns` (a bag
    keeps its own stamps: playing it again jumps back in time, which resets the tracks).
    """
    results, run = {}, 0
    for keep in keeps:
        scored, frames, start = [], 0, time.perf_counter()
        for play in plays:
            one, sent = play_to_node(
                client, play((NODE_T0 + run * SEQUENCE_GAP) * 10**9), keep, on_answer=on_answer)
            run += 1
            scored.append(one)
            frames += sent
        results[f'every {keep}'] = summarize(scored) | {
            'frames': frames,
            'round_trip_ms_mean': round((time.perf_counter() - start) / max(frames, 1) * 1e3, 2)}
    return results


def table(results: dict) -> str:
    """A plain-text table: one row per source and keep.

    ms/frame is the tracker's update in this process, or, for the node, the mean lockstep
    round trip of a frame (inference and transport included).
    """
    head = f'{"source":<18}{"frames":<10}{"kept":>7}{"IDF1":>8}{"MOTA":>8}{"HOTA":>8}' \
           f'{"IDsw":>6}{"recall":>8}{"prec.":>8}{"frag":>6}{"ms/frame":>10}'
    rows = [head]
    for source, by_keep in results.items():
        for kept, m in by_keep.items():
            ms = m.get('tracker_ms_mean', m.get('round_trip_ms_mean'))
            rows.append(f'{source:<18}{kept:<10}{m["frames"]:>7}{m["idf1"]:>8.4f}'
                        f'{m["mota"]:>8.4f}{m["hota"]:>8.4f}{m["num_switches"]:>6}'
                        f'{m["recall"]:>8.4f}'
                        f'{m["precision"]:>8.4f}{m["num_fragmentations"]:>6}{ms:>10.4f}')
    return '\n'.join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sequences', type=int, default=8)
    parser.add_argument('--frames', type=int, default=240, help='frames a sequence (120 Hz)')
    parser.add_argument('--seed', type=int, default=0, help='first sequence seed')
    parser.add_argument('--source', default='truth,pipeline',
                        help=f'comma-separated, of {SOURCES} (in this process)')
    parser.add_argument('--report', choices=REPORTS, default='regions',
                        help='in this process: what of the tracks is scored (see REPORTS)')
    parser.add_argument('--keep', default='1,3', help='one frame in N is tracked, for each N')
    parser.add_argument('--model-path', default='', help="'' = the default model")
    parser.add_argument('--engine', default='auto')
    parser.add_argument('--output', type=Path, help='write tracking.json there')
    node = parser.add_argument_group('over DDS: the segmentation node')
    node.add_argument('--node', action='store_true',
                      help='score the node\'s detections instead of a tracker in this process')
    node.add_argument('--bag', type=Path, help=f'play this bag (with {TRUTH_FILE}; implies '
                      '--node) instead of generated sequences')
    node.add_argument('--image-topic', default='/camera/image_raw', help='the bag\'s images')
    node.add_argument('--no-start-node', action='store_true',
                      help='use a node that is already running on this ROS graph')
    node.add_argument('--namespace', default='', help='namespace of the node under test')
    node.add_argument('--domain-id', type=int, default=79)
    node.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE')
    args = parser.parse_args(argv)
    keeps = [int(k) for k in args.keep.split(',')]
    if min(keeps) < 1:
        parser.error('--keep: each N must be >= 1')
    spec = SequenceSpec(frames=args.frames)
    seeds = list(range(args.seed, args.seed + args.sequences))
    if args.node or args.bag:
        if args.bag and not (args.bag / TRUTH_FILE).is_file():
            parser.error(f'{args.bag} has no {TRUTH_FILE}: write it with make_sample_bag '
                         '--tracking')
        about, results = _over_dds(args, spec, seeds, keeps)
    else:
        sources = [s for s in args.source.split(',') if s]
        if not sources or set(sources) - set(SOURCES):
            parser.error(f'--source: choose from {SOURCES}')
        pipeline = (pipeline_source(args.model_path, args.engine) if 'pipeline' in sources
                    else None)
        results = evaluate(seeds, spec, sources, keeps, TrackerParams(), pipeline, args.report)
        about = {'sequences': seeds, 'spec': asdict(spec), 'params': asdict(TrackerParams()),
                 'report': args.report}
        print(f'tracking on {len(seeds)} sequences of {args.frames} frames at {spec.rate:g} Hz '
              f'(seeds {seeds[0]}-{seeds[-1]}), scoring {args.report}, {TrackerParams()}')
    print(table(results))
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / 'tracking.json').write_text(json.dumps(about | {'results': results},
                                                              indent=2))
        print(f'tracking.json in {args.output}/')


def _over_dds(args: argparse.Namespace, spec: SequenceSpec, seeds: list[int],
              keeps: list[int]) -> tuple[dict, dict]:
    """Run the node (unless it runs already) and score it; what was played, the figures."""
    import tempfile

    import rclpy

    from jetson_seg.allocator import keep_large_allocations
    from jetson_seg.tools.node_client import NodeClient, NodeUnderTest, isolated_env

    keep_large_allocations()  # this process sends frames too
    params = dict(item.split(':=', 1) for item in args.node_param)
    node_proc = None
    if not args.no_start_node:
        env = isolated_env(args.domain_id)
        log = (args.output or Path(tempfile.mkdtemp(prefix='jetson_seg_track_'))) / 'node.log'
        log.parent.mkdir(parents=True, exist_ok=True)
        node_proc = NodeUnderTest(params, log, env, args.namespace)
    rclpy.init(args=[])  # our flags are not ROS arguments
    client = NodeClient.on_own_node('jetson_seg_track_evaluator', namespace=args.namespace,
                                    outputs=('detections',))
    try:
        client.connect(node_proc=node_proc)
        if args.bag:
            plays = [lambda start_ns: bag_frames(args.bag, args.image_topic)]
            about = {'bag': str(args.bag)}
        else:
            plays = [lambda start_ns, seed=seed: generated_frames(seed, spec, start_ns)
                     for seed in seeds]
            about = {'sequences': seeds, 'spec': asdict(spec)}
        print(f'tracking by the node over DDS, lockstep, on '
              f'{args.bag or f"{len(seeds)} sequences of {args.frames} frames"} at '
              f'{spec.rate:g} Hz stamps; node parameters {params or "defaults"}', flush=True)
        results = {'node (DDS)': evaluate_node(client, plays, keeps)}
        about |= {'node_params': params, 'engine': client.figures().get('engine')}
        return about, results
    finally:
        client.close()
        rclpy.try_shutdown()
        if node_proc is not None:
            node_proc.stop()


if __name__ == '__main__':
    main()
