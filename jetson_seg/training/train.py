"""Train the default model on generated scenes and write it with its metadata.

    python -m jetson_seg.training.train --output models/default --seed 7

Scenes are drawn at 640x480 and shrunk exactly as the node does (letterbox), so training sees
what inference sees. Evaluation uses a held-out seed and scores masks at 640x480, the resolution
the node publishes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jetson_seg.model_info import InputSpec, ModelInfo, OutputSpec, write_model_json
from jetson_seg.training.scenes import CLASS_COLORS, CLASS_NAMES, SceneSpec, generate_scene

HELD_OUT_SEED = 1_000_003


def _render_chunk(args: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.vision.preprocess import Letterbox, to_network_input

    seed, count, net_w, net_h = args
    rng = np.random.default_rng(seed)
    spec = SceneSpec()
    box = Letterbox.fit(spec.width, spec.height, net_w, net_h)
    images = np.zeros((count, net_h, net_w, 3), np.uint8)
    masks = np.zeros((count, net_h, net_w), np.uint8)
    for i in range(count):
        scene = generate_scene(rng, spec)
        to_network_input(DecodedImage(scene.image, 'rgb'), (net_h, net_w), images[i], box)
        box.content(masks[i])[...] = cv2.resize(scene.mask, (box.content_w, box.content_h),
                                                interpolation=cv2.INTER_NEAREST)
    return images, masks


def render_dataset(seed: int, count: int, net_w: int, net_h: int,
                   workers: int = 2, chunk: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Scenes shrunk to the network input, reproducible for a seed (independent of `workers`)."""
    jobs = [(seed * 100_003 + i, min(chunk, count - i * chunk), net_w, net_h)
            for i in range((count + chunk - 1) // chunk)]
    with Pool(workers) as pool:
        parts = list(tqdm(pool.imap(_render_chunk, jobs), total=len(jobs),
                          desc=f'scenes (seed {seed})', unit='chunk'))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _dice_ce_loss(num_classes: int):
    import tensorflow as tf

    def loss(y_true, y_pred):
        y_true = tf.cast(tf.squeeze(y_true, -1), tf.int32)
        ce = tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        onehot = tf.one_hot(y_true, num_classes)
        inter = tf.reduce_sum(onehot * y_pred, axis=(1, 2))
        denom = tf.reduce_sum(onehot + y_pred, axis=(1, 2))
        dice = 1.0 - (2.0 * inter + 1.0) / (denom + 1.0)
        return tf.reduce_mean(ce, axis=(1, 2)) + tf.reduce_mean(dice, axis=-1)

    return loss


def evaluate(model_fn, count: int, seed: int = HELD_OUT_SEED) -> dict:
    """mIoU of `model_fn` (uint8 batch -> probabilities) on held-out scenes at 640x480."""
    from jetson_seg.training.metrics import ConfusionMatrix
    from jetson_seg.vision.postprocess import class_mask, probability_planes
    from jetson_seg.vision.image_conversion import DecodedImage
    from jetson_seg.vision.preprocess import Letterbox, to_network_input

    rng = np.random.default_rng(seed)
    spec = SceneSpec()
    conf = ConfusionMatrix(len(CLASS_NAMES))
    net_h, net_w = model_fn.input_hw
    box = Letterbox.fit(spec.width, spec.height, net_w, net_h)
    for _ in tqdm(range(count), desc='held-out evaluation', unit='scene'):
        scene = generate_scene(rng, spec)
        probs = model_fn(to_network_input(DecodedImage(scene.image, 'rgb'), (net_h, net_w),
                                          box=box)[None])[0]
        conf.add(scene.mask, class_mask(probability_planes(probs, box, True)))
    iou = conf.iou()
    return {'scenes': count, 'seed': seed, 'resolution': [spec.width, spec.height],
            'mean_iou': conf.mean_iou(), 'pixel_accuracy': conf.pixel_accuracy(),
            'iou': {name: float(v) for name, v in zip(CLASS_NAMES, iou)}}


class _KerasPredictor:
    def __init__(self, model) -> None:
        import tensorflow as tf
        self._fn = tf.function(model)
        self.input_hw = tuple(model.input_shape[1:3])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._fn(batch).numpy()


def default_model_info(model_dir: Path, spec) -> ModelInfo:
    """The default model's description: uint8 RGB in, letterboxed, softmax out."""
    return ModelInfo(model_dir, CLASS_NAMES, CLASS_COLORS,
                     InputSpec(height=spec.height, width=spec.width), OutputSpec())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', default='models/default')
    parser.add_argument('--seed', type=int, default=7)
    parser.add_argument('--scenes', type=int, default=4000)
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--eval-scenes', type=int, default=200)
    parser.add_argument('--init', help='continue from this model.keras instead of from scratch')
    parser.add_argument('--lr', type=float, default=4e-3, help='peak learning rate')
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from jetson_seg.training.model import ModelSpec, build_model, count_flops

    keras.utils.set_random_seed(args.seed)
    spec = ModelSpec()
    started = time.time()
    images, masks = render_dataset(args.seed, args.scenes, spec.width, spec.height)
    if args.init:
        from jetson_seg.model_info import load_keras
        model = load_keras(args.init)
    else:
        model = build_model(spec)
    steps = args.epochs * (len(images) // args.batch)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr / 40, steps, warmup_target=args.lr,
                                                      warmup_steps=steps // 20)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=_dice_ce_loss(spec.num_classes))

    def flip(x, y):
        if tf.random.uniform(()) < 0.5:
            x, y = tf.reverse(x, [1]), tf.reverse(y, [1])
        return x, y

    data = (tf.data.Dataset.from_tensor_slices((images, masks[..., None]))
            .shuffle(len(images), seed=args.seed).map(flip).batch(args.batch, drop_remainder=True)
            .prefetch(2))
    model.fit(data, epochs=args.epochs, verbose=1)
    train_seconds = time.time() - started

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / 'model.keras')
    report = evaluate(_KerasPredictor(model), args.eval_scenes)
    info = default_model_info(out, spec)
    record = {
        'name': 'jetson_seg_unet', 'normalization': 'in graph: x / 127.5 - 1',
        'parameters': int(model.count_params()), 'gflop_per_frame': count_flops(model) / 1e9,
        'training': {'seed': args.seed, 'scenes': args.scenes, 'epochs': args.epochs,
                     'batch': args.batch, 'seconds': round(train_seconds, 1),
                     'init': args.init, 'peak_lr': args.lr,
                     'tensorflow': tf.__version__, 'keras': keras.__version__},
        'evaluation': report,
    }
    write_model_json(out, info, record)
    print(json.dumps({k: record[k] for k in ('parameters', 'gflop_per_frame', 'evaluation')},
                     indent=2))


if __name__ == '__main__':
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    main()
