"""Tracking figures of training runs on a GPU machine without TensorFlow (Keras on JAX).

    KERAS_BACKEND=jax PYTHONPATH=<this checkout> python3 scripts/gpu_track_eval.py OUT.json \
        NAME=RUN_DIR ... [oracle=oracle] [--seeds 1000 32] [--workers 16] [--sets plain]

Each RUN_DIR holds a run's model.weights.h5 and training.json (training/train.py). The package's
own pipeline (SegmentationPipeline, NetworkOutput), RegionTracker and scoring
(tools/evaluate_tracking) run unchanged on the sequences of training/sequences.py, in spawned
worker processes (rendering on the CPUs); only the engine is a jitted Keras-on-JAX call of the
FP32 network. `oracle` feeds the exact class shares of each output pixel instead (the labels the
trainer uses): what a perfect network at that grid would give. Writes OUT.json (IDF1, MOTA,
HOTA with every frame and one in three, the perfect-identity ceiling, detection recall by
visible area, and with --sets the held-out sets' scores) and OUT.pkl.gz (the recorded regions,
to score again elsewhere). How run 9 and its siblings were compared (README "The default model").
"""
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

_MODEL = {}


def _worker_init():
    os.environ['KERAS_BACKEND'] = 'jax'
    os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'  # 16 workers share the GPU
    os.environ['OMP_NUM_THREADS'] = '1'
    import cv2
    cv2.setNumThreads(1)


def _pipeline(spec_str):
    if spec_str in _MODEL:
        return _MODEL[spec_str]
    import numpy as np
    from jetson_seg.engines.base import Engine
    from jetson_seg.training import train
    from jetson_seg.training.model import ModelSpec, build_model
    from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline

    class Fn(Engine):
        name = 'keras-jax'

        def __init__(self, fn, hw):
            super().__init__(hw, 4, 'uint8')
            self.fn = fn

        def infer(self, batch):
            return np.asarray(self.fn(batch))

    if spec_str == 'oracle':
        spec = ModelSpec(residual_blocks=(1, 2))
        engine = Fn(None, (spec.height, spec.width))
    else:
        import jax
        run = json.loads((Path(spec_str) / train.RUN_FILE).read_text())
        spec = train.recorded_spec(run)
        model = build_model(spec)
        model.load_weights(Path(spec_str) / train.WEIGHTS_FILE)
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        fn = jax.jit(lambda x: model.stateless_call(tv, ntv, x, training=False)[0])
        engine = Fn(fn, (spec.height, spec.width))
    info = train.default_model_info(Path('.'), spec)
    pipe = SegmentationPipeline(engine, info, PipelineConfig())
    _MODEL[spec_str] = (pipe, spec)
    return _MODEL[spec_str]


def _one(job):
    spec_str, seed = job
    import numpy as np
    from jetson_seg.tools.evaluate_tracking import Recorded
    from jetson_seg.training import train
    from jetson_seg.training.scenes import Scene, boxes_from_mask
    from jetson_seg.training.sequences import SequenceSpec, sequence_frames
    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.vision.pipeline import Wanted

    pipe, spec = _pipeline(spec_str)
    wanted = Wanted(mask=False, color_mask=False, overlay=False, detections=True)
    frames = []
    for frame in sequence_frames(seed, SequenceSpec()):
        if spec_str == 'oracle':
            scene = Scene(frame.image, frame.mask, boxes_from_mask(frame.mask))
            _, labels = train._letterboxed(scene, spec.width, spec.height, 400, 1)
            shares = labels[..., :4].astype(np.float32) / 255.0
            pipe.engine.fn = lambda batch, s=shares: s[None]
        item = Recorded(frame.stamp, frame.objects)
        item.regions['pipeline'] = pipe.run(DecodedImage(frame.image, 'rgb'), wanted).regions or []
        frames.append(item)
    return spec_str, seed, frames


def _plain(job):
    """The held-out plain set (and `sets`) scored as train.evaluate does, FP32 in JAX."""
    spec_str, count, sets = job
    from jetson_seg.training import train
    with train.render_pool(8) as pool:
        run = json.loads((Path(spec_str) / train.RUN_FILE).read_text())
        spec = train.recorded_spec(run)
        held = train.held_out_sets(count, (spec.height, spec.width), pool, sets)
        pipe, _ = _pipeline(spec_str)
        report = train.evaluate(pipe.engine.infer, held, pool)
    return spec_str, report


def size_recall(sequences):
    """Share of expected object-frames that some region matches (IoU >= 0.5), by visible area."""
    import numpy as np
    from jetson_seg.tools.evaluate_tracking import MIN_IOU, MIN_VISIBLE
    bins = [(32, 256), (256, 1024), (1024, 10**9)]
    hit = np.zeros(len(bins)), np.zeros(len(bins))
    for frames in sequences:
        for item in frames:
            regions = item.regions['pipeline']
            for obj in item.objects:
                if obj.visible < MIN_VISIBLE:
                    continue
                k = next(i for i, (lo, hi) in enumerate(bins) if lo <= obj.visible < hi)
                x0, y0, x1, y1 = obj.box
                best = 0.0
                for r in regions:
                    ix = max(0, min(x1, r.x1) - max(x0, r.x0))
                    iy = max(0, min(y1, r.y1) - max(y0, r.y0))
                    inter = ix * iy
                    union = (x1 - x0) * (y1 - y0) + (r.x1 - r.x0) * (r.y1 - r.y0) - inter
                    best = max(best, inter / max(union, 1))
                hit[1][k] += 1
                hit[0][k] += best >= MIN_IOU
    return {f'{lo}-{hi if hi < 10**9 else "inf"}': [round(float(h / max(n, 1)), 4), int(n)]
            for (lo, hi), h, n in zip(bins, hit[0], hit[1])}


def main():
    out = Path(sys.argv[1])
    args = sys.argv[2:]
    seeds = (1000, 32)
    workers = 16
    if '--seeds' in args:
        i = args.index('--seeds')
        seeds = (int(args[i + 1]), int(args[i + 2]))
        del args[i:i + 3]
    if '--workers' in args:
        i = args.index('--workers')
        workers = int(args[i + 1])
        del args[i:i + 2]
    plain_sets = ()
    if '--sets' in args:
        i = args.index('--sets')
        plain_sets = tuple(args[i + 1].split(','))
        del args[i:i + 2]
    models = dict(a.split('=', 1) for a in args)
    seed_list = list(range(seeds[0], seeds[0] + seeds[1]))
    jobs = [(spec, s) for spec in models.values() for s in seed_list]
    ctx = mp.get_context('spawn')
    start = time.time()
    got = {}
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        for spec_str, seed, frames in pool.imap_unordered(_one, jobs):
            got[(spec_str, seed)] = frames
    print(f'recorded {len(jobs)} sequences in {time.time() - start:.0f} s', flush=True)
    import pickle
    import numpy as np
    if not hasattr(np, 'asfarray'):  # motmetrics 1.4 on numpy 2
        np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)
    import gzip
    with gzip.open(out.with_suffix('.pkl.gz'), 'wb') as f:
        pickle.dump({(name, s): got[(spec, s)] for name, spec in models.items()
                     for s in seed_list}, f)
    held = {}
    if plain_sets:  # in this process (pool workers cannot fork): render pool before JAX starts
        from jetson_seg.training import train
        with train.render_pool(14) as rpool:
            sets_by_hw = {}
            for spec_str in [m for m in models.values() if m != 'oracle']:
                run = json.loads((Path(spec_str) / train.RUN_FILE).read_text())
                spec = train.recorded_spec(run)
                hw = (spec.height, spec.width)
                if hw not in sets_by_hw:
                    sets_by_hw[hw] = train.held_out_sets(200, hw, rpool, plain_sets)
                os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'
                pipe, _ = _pipeline(spec_str)
                held[spec_str] = train.evaluate(pipe.engine.infer, sets_by_hw[hw], rpool)
                print(spec_str, 'held-out FP32 (JAX):\n'
                      + train.summary_line(held[spec_str], 32), flush=True)
    from jetson_seg.tools.evaluate_tracking import score, table
    from jetson_seg.vision.tracker import TrackerParams
    results = {}
    for name, spec_str in models.items():
        seqs = [got[(spec_str, s)] for s in seed_list]
        res = {}
        for label, params in ((name, TrackerParams()), (f'{name} ceiling', None)):
            res[label] = {f'every {k}': score(seqs, 'pipeline', params, k) for k in (1, 3)}
        print(table(res), flush=True)
        sr = size_recall(seqs)
        print(f'{name} detection recall by visible area: {sr}', flush=True)
        results[name] = {'spec': spec_str, 'tracking': res, 'size_recall': sr,
                         'held_out': held.get(spec_str)}
    out.write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
