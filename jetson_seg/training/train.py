"""Train the default model on generated scenes, on any Keras 3 backend, and package it.

    # on a GPU machine (JAX backend): train, write weights + training.json
    KERAS_BACKEND=jax python -m jetson_seg.training.train --output run --steps 9000 --workers 15
    # in the package's venv: rebuild the network, load the weights, evaluate, write the model
    .venv/bin/python -m jetson_seg.training.train --package run --output models/default
    # on a CPU (TensorFlow backend): both in one command
    .venv/bin/python -m jetson_seg.training.train --output models/default --steps 4000

Scenes are drawn at their frame size, shrunk exactly as the node does (letterbox), and labelled
with each class's share of every output pixel (soft labels): the node resizes probabilities
bilinearly to the frame before the argmax, so probabilities that follow coverage put mask edges
between output pixels where they belong. A last label channel holds the share of small objects
(`--small-area`), whose pixels the loss can weigh up (`--small-object-weight`): a 12 px object is
a few network pixels, too few to count in a mean over the frame, yet one missed detection.
Worker processes keep rendering new scenes while the accelerator trains; the scene pool grows
on a fixed schedule, so a seed gives the same batches whatever the render speed. Evaluation
scores masks at the frame's size, as the node publishes them, on a plain held-out set and one
per shift (scenes.SHIFTS), with detection precision/recall of the node's region filter.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import asdict
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from jetson_seg.model_info import InputSpec, ModelInfo, OutputSpec, write_model_json
from jetson_seg.training.scenes import (CLASS_COLORS, CLASS_NAMES, SHIFTS, Scene, SceneSpec,
                                        generate_scene)

HELD_OUT_SEED = 1_000_003  # the plain held-out set; shift i uses HELD_OUT_SEED + 1 + i
WEIGHTS_FILE = 'model.weights.h5'
RUN_FILE = 'training.json'
#: Longest wait for one chunk of scenes (a chunk takes a worker seconds) before giving up.
RENDER_TIMEOUT_S = 300
#: Region filters (smallest region in mask pixels) scored in every evaluation.
MIN_AREAS = (1, 4, 16, 32, 64, 100, 150)


#: Label channels: each class's share of the network pixel, then the share of small objects.
LABEL_CHANNELS = len(CLASS_NAMES) + 1


def small_objects(scene: Scene, small_area: int) -> np.ndarray:
    """1.0 on the pixels of the scene's regions smaller than `small_area` px, else 0.0."""
    small = np.zeros(scene.mask.shape, np.float32)
    for x0, y0, x1, y1, cls, area in scene.boxes:
        if area < small_area:
            window = (slice(y0, y1), slice(x0, x1))
            small[window][scene.mask[window] == cls] = 1.0
    return small


def _letterboxed(scene: Scene, net_w: int, net_h: int, small_area: int,
                 stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Network input and soft labels (uint8 share x 255 per output pixel, LABEL_CHANNELS).

    The output grid is the input's size divided by the network's `stride`.
    """
    from jetson_seg.vision.image_conversion import DecodedImage, resize
    from jetson_seg.vision.letterbox import Letterbox
    from jetson_seg.vision.preprocess import to_network_input

    image, mask = scene.image, scene.mask
    in_box = Letterbox.fit(image.shape[1], image.shape[0], net_w, net_h)
    frame = to_network_input(DecodedImage(image, 'rgb'), (net_h, net_w), box=in_box)
    out_w, out_h = net_w // stride, net_h // stride
    box = in_box.on_grid(out_w, out_h)  # where the node reads the output: the same rule
    labels = np.zeros((out_h, out_w, LABEL_CHANNELS), np.uint8)
    labels[..., 0] = 255  # padding is background, and no small object
    content = box.content(labels)
    onehot = (mask[..., None] == np.arange(len(CLASS_NAMES), dtype=np.uint8)).astype(np.float32)
    small = small_objects(scene, small_area)
    for channels, planes in ((slice(0, -1), onehot), (-1, small)):  # OpenCV: 4 channels at most
        share = resize(planes, (box.content_w, box.content_h))  # the frames' own rule
        content[..., channels] = np.round(share.reshape(content[..., channels].shape) * 255)
    return frame, labels


def _renderer_init() -> None:
    """A render worker yields to the trainer.

    Why: the workers render the whole scene pool as fast as they can, and fifteen of them
    starved the process feeding the GPU (its first epochs ran 4-8x slower). SIGTERM and
    SIGINT keep their defaults, so Pool.terminate() ends a worker whatever the parent
    installed (rclpy.init() sets a SIGTERM handler that does not end a process).
    """
    os.nice(10)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


def render_pool(workers: int) -> Pool:
    """Worker processes for scenes, started from a fork server (a fresh interpreter).

    Why not a plain fork: a child forked from a process with threads (rclpy's DDS, a
    backend's pools) may inherit a lock another thread held and hang before its first task;
    the test suite hung so on a forked worker, and a fork server has no such threads.
    """
    return multiprocessing.get_context('forkserver').Pool(workers, initializer=_renderer_init)


def _render_chunk(job: tuple[int, int, int, int, SceneSpec, int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    seed, count, net_w, net_h, spec, small_area, stride = job
    rng = np.random.default_rng(seed)
    images = np.zeros((count, net_h, net_w, 3), np.uint8)
    labels = np.zeros((count, net_h // stride, net_w // stride, LABEL_CHANNELS), np.uint8)
    for i in range(count):
        images[i], labels[i] = _letterboxed(generate_scene(rng, spec), net_w, net_h,
                                            small_area, stride)
    return images, labels


class SceneFeed:
    """Training batches from scenes that worker processes render while the model trains.

    Chunk k of `chunk` scenes (seed derived from `seed` and k) joins the pool at a fixed step,
    so the pool grows linearly until `grow` of the steps and the batches depend only on the
    seed. Batches are drawn with replacement and turned upside down at random (the classes
    are symmetric; a left-right flip copies pixel by pixel and slows the feed several times);
    a thread prepares them ahead of the accelerator. `pool` is a render_pool.
    """

    def __init__(self, seed: int, scenes: int, steps: int, batch: int, spec: SceneSpec,
                 net_hw: tuple[int, int], pool: Pool, small_area: int = 0, stride: int = 1,
                 chunk: int = 32, grow: float = 0.75) -> None:
        net_h, net_w = net_hw
        self.seed, self.steps, self.batch = seed, steps, batch
        sizes = [min(chunk, scenes - k) for k in range(0, scenes, chunk)]
        jobs = [(seed * 1_000_003 + k, n, net_w, net_h, spec, small_area, stride)
                for k, n in enumerate(sizes)]
        self._ends = np.cumsum(sizes)
        self._first = max(1, min(len(jobs), -(-4 * batch // chunk)))
        self._grow_steps = max(1, int(grow * steps))
        self.images = np.empty((scenes, net_h, net_w, 3), np.uint8)
        self.labels = np.empty((scenes, net_h // stride, net_w // stride, LABEL_CHANNELS),
                               np.uint8)
        self._loaded = 0
        self._results = pool.imap(_render_chunk, jobs)
        self.waited = 0.0  # seconds the trainer waited for rendering

    def _chunks_at(self, step: int) -> int:
        extra = (len(self._ends) - self._first) * min(1.0, step / self._grow_steps)
        return self._first + int(np.ceil(extra))

    def _load(self, chunks: int) -> int:
        while self._loaded < chunks:
            start = time.perf_counter()
            try:
                images, labels = self._results.next(timeout=RENDER_TIMEOUT_S)
            except multiprocessing.TimeoutError:  # a worker killed (OOM, a crash) never answers
                raise RuntimeError(f'no scenes rendered for {RENDER_TIMEOUT_S} s: a render '
                                   f'worker may have died') from None
            self.waited += time.perf_counter() - start
            end = self._ends[self._loaded]
            self.images[end - len(images):end] = images
            self.labels[end - len(labels):end] = labels
            self._loaded += 1
        return int(self._ends[self._loaded - 1])

    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for step in range(self.steps):
            available = self._load(self._chunks_at(step))
            rng = np.random.default_rng((self.seed, step))
            idx = np.sort(rng.integers(0, available, self.batch))
            x, y = self.images[idx], self.labels[idx]
            flip = rng.random(self.batch) < 0.5  # upside down: rows copy whole, cheaply
            x[flip], y[flip] = x[flip, ::-1], y[flip, ::-1]
            yield x, y

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ahead: queue.Queue = queue.Queue(maxsize=8)

        def produce() -> None:
            try:
                for item in self._batches():
                    ahead.put(item)
            except Exception as error:  # a render worker's failure: the trainer raises it
                ahead.put(error)
            ahead.put(None)

        threading.Thread(target=produce, daemon=True).start()
        while (item := ahead.get()) is not None:
            if isinstance(item, Exception):
                raise RuntimeError(f'rendering training scenes failed: {item}') from item
            yield item

    @property
    def scenes_used(self) -> int:
        return int(self._ends[self._loaded - 1]) if self._loaded else 0


def soft_dice_ce(num_classes: int, small_object_weight: float = 0.0) -> Callable:
    """Cross-entropy against soft labels plus soft Dice per class (keras.ops: any backend).

    Dice keeps the small classes (a 10 px triangle) from drowning in background pixels; the
    cross-entropy of a small object's pixels counts 1 + `small_object_weight` times (labels:
    LABEL_CHANNELS).
    """
    from keras import ops

    def loss(y_true, y_pred):
        labels = ops.cast(y_true, 'float32') / 255.0
        y, small = labels[..., :num_classes], labels[..., num_classes]
        p = ops.cast(y_pred, 'float32')
        pixel_ce = -ops.sum(y * ops.log(ops.clip(p, 1e-7, 1.0)), axis=-1)
        ce = ops.mean(pixel_ce * (1.0 + small_object_weight * small), axis=(1, 2))
        inter = ops.sum(y * p, axis=(1, 2))
        denom = ops.sum(y + p, axis=(1, 2))
        dice = 1.0 - (2.0 * inter + 1.0) / (denom + 1.0)
        return ce + ops.mean(dice, axis=-1)

    loss.__name__ = f'soft_dice_ce_{num_classes}'
    return loss


def pixel_accuracy(y_true, y_pred):
    """Share of network pixels whose argmax matches the majority label."""
    from keras import ops

    classes = y_pred.shape[-1]
    return ops.mean(ops.cast(ops.argmax(y_true[..., :classes], -1) == ops.argmax(y_pred, -1),
                             'float32'))


# ------------------------------------------------------------------------- evaluation

def _held_out_set(job: tuple[str, int, int, int, int]) -> tuple[str, np.ndarray, list]:
    """Network inputs and (mask, boxes) truth of one held-out set, drawn in sequence."""
    from jetson_seg.training.scenes import scene_stream
    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.vision.preprocess import to_network_input

    name, seed, count, net_w, net_h = job
    spec = SceneSpec() if name == 'plain' else SceneSpec(shifts=(name,))
    stream = scene_stream(seed, spec)
    frames = np.zeros((count, net_h, net_w, 3), np.uint8)
    truth = []
    for i in range(count):
        scene = next(stream)
        to_network_input(DecodedImage(scene.image, 'rgb'), (net_h, net_w), frames[i])
        truth.append((scene.mask, scene.boxes))
    return name, frames, truth


def _score(job: tuple[np.ndarray, tuple[int, int], list]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Confusion matrix and (tp, fp, fn) per MIN_AREAS of masks made as the node makes them.

    At each region filter, truth regions smaller than it are ignored (metrics.match_boxes).
    """
    from jetson_seg.training.metrics import ConfusionMatrix, match_boxes
    from jetson_seg.vision.letterbox import Letterbox
    from jetson_seg.vision.postprocess import NetworkOutput

    probs, (net_h, net_w), truth = job
    output = NetworkOutput(ModelInfo(Path(), CLASS_NAMES, CLASS_COLORS))  # softmax head
    conf = ConfusionMatrix(len(CLASS_NAMES))
    det = np.zeros((len(MIN_AREAS), 3), np.int64)
    for p, (gt_mask, gt_boxes) in zip(probs, truth):
        h, w = gt_mask.shape
        mask = output.mask(p, Letterbox.fit(w, h, net_w, net_h))
        conf.add(gt_mask, mask.ids)
        found = output.regions(mask)
        for k, area in enumerate(MIN_AREAS):
            boxes = [(r.x0, r.y0, r.x1, r.y1, r.class_id) for r in found if r.area >= area]
            det[k] += match_boxes(gt_boxes, boxes, 0.5, min_area=area)
    return conf.matrix, det


def held_out_sets(count: int, input_hw: tuple[int, int], pool: Pool,
                  sets: Sequence[str] = ('plain',) + SHIFTS) -> dict[str, tuple]:
    """Each named set (plain or a shift) rendered once: {name: (frames, truth)}."""
    net_h, net_w = input_hw
    jobs = [(name, HELD_OUT_SEED if name == 'plain' else HELD_OUT_SEED + 1 + SHIFTS.index(name),
             count, net_w, net_h) for name in sets]
    found = {name: (frames, truth) for name, frames, truth in
             tqdm(pool.imap_unordered(_held_out_set, jobs), total=len(jobs),
                  desc=f'held-out sets ({count} scenes each)', unit='set')}
    return {name: found[name] for name in sets}


def evaluate(predict: Callable[[np.ndarray], np.ndarray], sets: dict[str, tuple],
             pool: Pool, batch: int = 50) -> dict:
    """mIoU, per-class IoU and detection P/R per region filter, for each held-out set."""
    from jetson_seg.training.metrics import ConfusionMatrix

    report = {}
    for name, (frames, truth) in tqdm(sets.items(), desc='evaluation', unit='set'):
        jobs = [(predict(frames[i:i + batch]), frames.shape[1:3], truth[i:i + batch])
                for i in range(0, len(frames), batch)]
        conf = ConfusionMatrix(len(CLASS_NAMES))
        det = np.zeros((len(MIN_AREAS), 3), np.int64)
        for matrix, counts in pool.imap(_score, jobs):
            conf.matrix += matrix
            det += counts
        report[name] = {
            'scenes': len(frames), 'mean_iou': round(conf.mean_iou(), 4),
            'pixel_accuracy': round(conf.pixel_accuracy(), 4),
            'iou': {n: round(float(v), 4) for n, v in zip(CLASS_NAMES, conf.iou())},
            'detection': {str(area): {'precision': round(tp / max(tp + fp, 1), 4),
                                      'recall': round(tp / max(tp + fn, 1), 4)}
                          for area, (tp, fp, fn) in zip(MIN_AREAS, det)}}
    return report


def summary_line(report: dict, min_area: int) -> str:
    """One line per set: mIoU, worst class, detection P/R at `min_area`."""
    lines = []
    for name, r in report.items():
        det = r['detection'][str(min_area)]
        iou = ' '.join(f'{k[:4]} {v:.3f}' for k, v in r['iou'].items())
        lines.append(f'  {name:<10} mIoU {r["mean_iou"]:.4f} ({iou})  '
                     f'P/R@{min_area}px {det["precision"]:.3f}/{det["recall"]:.3f}')
    return '\n'.join(lines)


def _predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """Inference in the running backend, batch by batch, as numpy."""
    return lambda batch: np.asarray(model.predict_on_batch(batch))


# ------------------------------------------------------------------------- training

def shift_rates(items: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """Parse `--shift-rates mono=0.3 jpeg=0.25` into (shift, probability) pairs.

    SceneSpec checks the names and the range.
    """
    pairs = []
    for item in items:
        name, _, rate = item.partition('=')
        try:
            pairs.append((name, float(rate)))
        except ValueError:  # no '=', or not a number after it
            raise ValueError(f'--shift-rates takes SHIFT=PROBABILITY, got {item!r}') from None
    return tuple(pairs)


def recorded_spec(run: dict):
    """The ModelSpec a training.json record was trained with (the default network if none)."""
    from jetson_seg.training.model import ModelSpec

    return ModelSpec(**{k: tuple(v) if isinstance(v, list) else v
                        for k, v in run.get('model_spec', {}).items()})


def _load_initial(model, path: str) -> list[str]:
    """Weights from a .weights.h5, a .keras file, or a run/model folder holding either.

    The source network may differ from `model` in input size or residual blocks (a run folder's
    training.json says how it was built; a bare .weights.h5 is taken as the default network):
    matching layers are copied by name. Returns the layers the source did not have.
    """
    import keras

    from jetson_seg.training.model import build_model, transfer_weights

    source = Path(path)
    if source.is_dir():
        source = next(p for p in (source / WEIGHTS_FILE, source / 'model.keras') if p.exists())
    if source.suffix == '.keras':
        trained = keras.saving.load_model(source, compile=False)
    else:
        run_file = source.parent / RUN_FILE
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
        trained = build_model(recorded_spec(run))
        trained.load_weights(source)
    return transfer_weights(trained, model)


def train(args: argparse.Namespace, pool: Pool, eval_scenes: int) -> Path:
    """Train in the current backend; writes the weights and training.json to args.output.

    `pool` (a render_pool) renders the scenes; with `eval_scenes` the
    trained weights are also scored here, in the training backend (a quick look before
    packaging).
    """
    from jetson_seg.training.model import ModelSpec

    spec = ModelSpec(height=args.input_size[1], width=args.input_size[0],
                     residual_blocks=tuple(args.residual_blocks), stem_stride=args.stem_stride)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    scene_spec = SceneSpec(shift_rate=args.shift_rate, shift_rates=shift_rates(args.shift_rates),
                           small_share=args.small_share)
    feed = SceneFeed(args.seed, args.scenes, args.steps, args.batch, scene_spec,
                     (spec.height, spec.width), pool, args.small_area, spec.stem_stride)

    import keras

    from jetson_seg.training.model import build_model

    keras.utils.set_random_seed(args.seed)
    model = build_model(spec)
    if args.init:
        new_layers = _load_initial(model, args.init)
        print(f'started from {args.init}; new layers: {", ".join(new_layers) or "none"}',
              flush=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr / 40, args.steps - args.steps // 20, warmup_target=args.lr,
        warmup_steps=args.steps // 20, alpha=0.01)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay),
                  loss=soft_dice_ce(spec.num_classes, args.small_object_weight),
                  metrics=[pixel_accuracy])
    per_epoch = min(args.steps, args.steps_per_epoch)

    def record(steps_done: int, loss: float) -> dict:
        """What the run did so far, written beside its weights."""
        run = {'seed': args.seed, 'scenes': args.scenes, 'shift_rate': args.shift_rate,
               'steps': args.steps, 'steps_done': steps_done, 'batch': args.batch,
               'peak_lr': args.lr, 'weight_decay': args.weight_decay, 'init': args.init,
               'loss': 'soft-label cross-entropy + soft Dice',
               'small_area': args.small_area, 'small_object_weight': args.small_object_weight,
               'optimizer': 'AdamW, cosine decay', 'seconds': round(time.time() - started, 1),
               'waited_for_rendering_s': round(feed.waited, 1), 'final_loss': round(loss, 4),
               'backend': keras.backend.backend(), 'keras': keras.__version__,
               'devices': _devices(), 'scene_spec': asdict(scene_spec),
               'model_spec': asdict(spec)}
        model.save_weights(out / WEIGHTS_FILE)
        (out / RUN_FILE).write_text(json.dumps(run, indent=2) + '\n')
        return run

    class Checkpoint(keras.callbacks.Callback):
        """Weights and record after every epoch: a run stopped by a time limit leaves both."""

        def on_epoch_end(self, epoch, logs=None):
            record((epoch + 1) * per_epoch, float((logs or {}).get('loss', float('nan'))))
            print(f'  scenes in pool {feed.scenes_used}, waited for rendering '
                  f'{feed.waited:.1f} s, {time.time() - started:.0f} s since start', flush=True)

    epochs = min(args.steps, args.stop_after or args.steps) // per_epoch
    history = model.fit(iter(feed), steps_per_epoch=per_epoch, epochs=epochs,
                        verbose=1 if args.progress else 2, callbacks=[Checkpoint()])
    run = record(epochs * per_epoch, float(history.history['loss'][-1]))
    print(f'trained in {run["seconds"]:.0f} s; {out / WEIGHTS_FILE} and {out / RUN_FILE} '
          f'written')
    if eval_scenes:
        sets = held_out_sets(eval_scenes, (spec.height, spec.width), pool)
        run['backend_evaluation'] = evaluate(_predictor(model), sets, pool)
        (out / RUN_FILE).write_text(json.dumps(run, indent=2) + '\n')
        print('held-out, in the training backend:\n'
              + summary_line(run['backend_evaluation'], args.min_area))
    return out


def _devices() -> list[str]:
    import keras

    if keras.backend.backend() == 'jax':
        import jax
        return [str(d.device_kind) for d in jax.devices()]
    return []


# ------------------------------------------------------------------------- packaging

def default_model_info(model_dir: Path, spec) -> ModelInfo:
    """The default model's description: uint8 RGB in, letterboxed, softmax out."""
    return ModelInfo(model_dir, CLASS_NAMES, CLASS_COLORS,
                     InputSpec(height=spec.height, width=spec.width), OutputSpec())


def package(run_dir: Path, output: Path, eval_scenes: int, pool: Pool, min_area: int) -> dict:
    """Rebuild the network here, load a run's weights, evaluate, save model.keras + model.json.

    Needs TensorFlow (FLOP count): run it in the package's venv, so the shipped .keras is
    written by the Keras that will read it. INT8 files come from the optimizer afterwards;
    `--evaluate` scores them.
    """
    import keras
    import tensorflow as tf

    from jetson_seg.training.model import build_model, count_flops

    run_path = run_dir / RUN_FILE
    run = json.loads(run_path.read_text()) if run_path.exists() else {}
    run.pop('backend_evaluation', None)  # superseded by the evaluation below
    spec = recorded_spec(run)
    model = build_model(spec)
    model.load_weights(run_dir / WEIGHTS_FILE)
    output.mkdir(parents=True, exist_ok=True)
    model.save(output / 'model.keras')
    if output.resolve() == run_dir.resolve():  # a CPU run packaged in place: keep it clean
        (output / WEIGHTS_FILE).unlink(missing_ok=True)
        run_path.unlink(missing_ok=True)

    sets = held_out_sets(eval_scenes, (spec.height, spec.width), pool)
    fn = tf.function(model)
    fp32 = evaluate(lambda b: fn(b).numpy(), sets, pool)
    metadata = {
        'name': 'jetson_seg_unet', 'normalization': 'in graph: x / 127.5 - 1',
        'parameters': int(model.count_params()), 'gflop_per_frame': count_flops(model) / 1e9,
        'training': run | {'packaged_with': {'tensorflow': tf.__version__,
                                             'keras': keras.__version__}},
        'evaluation': {
            'resolution': 'each frame at its own size (plain: 640x480), as the node publishes',
            'seeds': {'plain': HELD_OUT_SEED,
                      **{s: HELD_OUT_SEED + 1 + i for i, s in enumerate(SHIFTS)}},
            'min_region_area': min_area, 'sets': fp32},
    }
    write_model_json(output, default_model_info(output, spec), metadata)
    print(f'{output}: {metadata["parameters"]} parameters, '
          f'{metadata["gflop_per_frame"]:.3f} GFLOP/frame; held-out:\n'
          + summary_line(fp32, min_area))
    return metadata


def evaluate_file(path: Path, reference: Path, eval_scenes: int, pool: Pool,
                  min_area: int) -> dict:
    """Score a .keras or LiteRT file on every held-out set, with its mask agreement.

    Agreement is with the `reference` .keras: how much an INT8 file changes the masks. Writes
    nothing: model.json is part of the digest the optimizer output is checked against.
    """
    import keras
    import tensorflow as tf

    from jetson_seg.engines.litert import LiteRtEngine

    reference_model = keras.saving.load_model(reference, compile=False)
    ref = tf.function(reference_model)
    if path.suffix == '.tflite':
        engine = LiteRtEngine(path, threads=2)
        predict, input_hw = engine.infer, engine.input_hw
    else:
        model = keras.saving.load_model(path, compile=False)
        fn = tf.function(model)
        predict, input_hw = (lambda b: fn(b).numpy()), tuple(model.input_shape[1:3])
    sets = held_out_sets(eval_scenes, input_hw, pool)
    report = evaluate(predict, sets, pool)
    one = next(iter(sets.values()))[0][:1]
    if (tuple(reference_model.input_shape[1:3]), tuple(reference_model.output_shape[1:3])) \
            != (input_hw, predict(one).shape[1:3]):  # the reference cannot run on these frames
        agreement = f'no mask agreement: {reference} takes or answers another size'
    else:
        for name, (frames, _) in sets.items():
            report[name]['mask_agreement'] = round(float(np.mean(
                [(ref(frames[i:i + 50]).numpy().argmax(-1)
                  == predict(frames[i:i + 50]).argmax(-1)).mean()
                 for i in range(0, len(frames), 50)])), 5)
        agreement = f'mask agreement with {reference}: ' + ', '.join(
            f'{k} {v["mask_agreement"]:.4f}' for k, v in report.items())
    print(f'{path} on the held-out sets:\n' + summary_line(report, min_area) + '\n  '
          + agreement)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', default='models/default')
    parser.add_argument('--package', metavar='RUN_DIR',
                        help='only package the weights of this training run into --output')
    parser.add_argument('--evaluate', metavar='FILE', type=Path,
                        help='only score this .keras or .tflite on the held-out sets')
    parser.add_argument('--reference', type=Path, default=Path('models/default/model.keras'),
                        help='the .keras whose masks --evaluate compares with')
    parser.add_argument('--seed', type=int, default=7)
    parser.add_argument('--scenes', type=int, default=4000, help='distinct training scenes')
    parser.add_argument('--shift-rates', nargs='*', default=[], metavar='SHIFT=P',
                        help='own probabilities for some shifts, e.g. mono=0.3 jpeg=0.25')
    parser.add_argument('--shift-rate', type=float, default=0.15,
                        help='probability of each shift per training scene')
    parser.add_argument('--steps', type=int, default=4000)
    parser.add_argument('--stop-after', type=int, metavar='STEPS',
                        help='stop after this many steps, the schedule still planned for '
                             '--steps (how the shipped runs ended: at a time limit)')
    parser.add_argument('--steps-per-epoch', type=int, default=250)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--residual-blocks', type=int, nargs=2, default=[0, 0],
                        metavar=('QUARTER', 'EIGHTH'),
                        help='extra residual blocks at 1/4 and 1/8 of the output grid')
    parser.add_argument('--input-size', type=int, nargs=2, default=[256, 192],
                        metavar=('WIDTH', 'HEIGHT'), help='network input size')
    parser.add_argument('--small-area', type=int, default=400,
                        help='objects under this many pixels (at their frame size) are small')
    parser.add_argument('--small-object-weight', type=float, default=0.0,
                        help="extra weight of small objects' pixels in the cross-entropy")
    parser.add_argument('--small-share', type=float, default=0.0,
                        help='probability that a training object is drawn small (14-32 px '
                             'across at 640x480) instead of from the whole size range')
    parser.add_argument('--stem-stride', type=int, choices=(1, 2), default=1,
                        help='2: the first convolution halves the input (output at half size)')
    parser.add_argument('--lr', type=float, default=3e-3, help='peak learning rate')
    parser.add_argument('--weight-decay', type=float, default=1e-4)
    parser.add_argument('--init', help='start from these weights (.weights.h5, .keras, or a '
                                       'folder holding either)')
    parser.add_argument('--eval-scenes', type=int, default=200, help='per held-out set')
    parser.add_argument('--min-area', type=int, default=32,
                        help='region filter whose detection P/R the summary prints')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 2)
    parser.add_argument('--weights-only', action='store_true',
                        help='do not package after training (implied off TensorFlow)')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    args = parser.parse_args(argv)
    with render_pool(args.workers) as pool:
        if args.package:
            package(Path(args.package), Path(args.output), args.eval_scenes, pool,
                    args.min_area)
            return
        if args.evaluate:
            evaluate_file(args.evaluate, args.reference, args.eval_scenes, pool, args.min_area)
            return
        packaging = os.environ.get('KERAS_BACKEND', 'tensorflow') == 'tensorflow' \
            and not args.weights_only
        run_dir = train(args, pool, 0 if packaging else args.eval_scenes)
        if packaging:
            package(run_dir, Path(args.output), args.eval_scenes, pool, args.min_area)


if __name__ == '__main__':
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    main()
