#!/usr/bin/env python3
"""Bring your PyTorch model: train a small segmenter in PyTorch, export it to ONNX, score it.

What a team that trains in PyTorch hands the package: an NCHW float32 network whose input is
normalised outside it ((pixel / 255 - mean) / std, ImageNet mean and std, RGB) and whose output
is logits, exported with torch.onnx.export, plus a model.json that says so. This script makes
`models/pytorch_example/` that way for the package's default task (4 classes: background, disc,
rectangle, triangle; scenes from jetson_seg.training.scenes, which needs only numpy and OpenCV):

1. renders training scenes in worker processes (the training waits for the pool to grow with
   the steps, so each scene is seen a few times, flipped at random);
2. trains a compact encoder-decoder (BatchNorm, skip connections from 1/8 and 1/4, logits at
   1/4 of the input, as SegFormer answers) on 256x192 letterboxed inputs; the loss compares the
   logits resized to the input with soft labels there (soft-label cross-entropy + soft Dice);
3. exports ONNX (opset 17, dynamic batch, height and width) and writes model.json;
4. measures mIoU with onnxruntime (CPU) on held-out generated scenes (the plain set of the
   default model's card: seed 1000003), each scored at its own 640x480 size as the node
   publishes: softmax, probabilities resized bilinearly to the frame, argmax.

Run from the repository root; the defaults made the shipped model (4 minutes on one H100 with
15 render workers, of which 51 s waiting for scenes; the 48,000 scenes take 16.5 GB of GPU
memory; render order and GPU reductions vary, so a rerun gives figures within noise):

    PYTHONPATH=. python3 scripts/pytorch_example/train_export.py --output models/pytorch_example

Needs torch, numpy, opencv-python(-headless), onnx and onnxruntime; no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from jetson_seg.training.scenes import CLASS_NAMES, SceneSpec, generate_scene, scene_stream
except ImportError:  # run without PYTHONPATH: the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from jetson_seg.training.scenes import CLASS_NAMES, SceneSpec, generate_scene, scene_stream

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NET_W, NET_H = 256, 192
HELD_OUT_SEED = 1_000_003  # the default model's plain held-out set (jetson_seg.training.train)
NUM_CLASSES = len(CLASS_NAMES)


# --------------------------------------------------------------------------- the network

def conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation,
                  bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """Two 3x3 conv-BN, added to the input."""

    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.a = conv_bn(ch, ch, dilation=dilation)
        self.b = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation,
                                         bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


def up_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to `ref`'s size (any input size: odd sizes round up at each stride)."""
    return F.interpolate(x, size=ref.shape[-2:], mode='bilinear', align_corners=False)


class Segmenter(nn.Module):
    """Encoder to 1/16 (the last stage dilated), decoder back to 1/4 with skips from 1/8, 1/4."""

    def __init__(self, classes: int = NUM_CLASSES, widths: tuple[int, ...] = (16, 32, 64, 80),
                 decoder: tuple[int, int] = (64, 48)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        d3, d2 = decoder
        self.stem = nn.Sequential(conv_bn(3, w1, 2), conv_bn(w1, w1))              # 1/2
        self.enc2 = nn.Sequential(conv_bn(w1, w2, 2), Residual(w2))                # 1/4
        self.enc3 = nn.Sequential(conv_bn(w2, w3, 2), Residual(w3))                # 1/8
        self.enc4 = nn.Sequential(conv_bn(w3, w4, 2), Residual(w4, dilation=2))    # 1/16
        self.lateral4 = conv_bn(w4, d3, k=1)
        self.fuse3 = conv_bn(d3 + w3, d3)
        self.fuse2 = conv_bn(d3 + w2, d2)
        self.head = nn.Conv2d(d2, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e2 = self.enc2(self.stem(x))
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        d3 = self.fuse3(torch.cat([up_to(self.lateral4(e4), e3), e3], 1))
        d2 = self.fuse2(torch.cat([up_to(d3, e2), e2], 1))
        return self.head(d2)  # logits at 1/4 of the input


# --------------------------------------------------------------------- frames and labels
# The package's rules (jetson_seg.vision.letterbox / image_conversion), repeated here so that
# the script stands alone: letterbox placement and the one resize rule.

def letterbox(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """(pad_x, pad_y, content_w, content_h) of a src frame letterboxed into dst."""
    scale = min(dst_w / src_w, dst_h / src_h)
    cw = min(dst_w, max(1, int(round(src_w * scale))))
    ch = min(dst_h, max(1, int(round(src_h * scale))))
    return (dst_w - cw) // 2, (dst_h - ch) // 2, cw, ch


def resize(pixels: np.ndarray, dst_wh: tuple[int, int]) -> np.ndarray:
    """Area-average when shrinking (whole k x k blocks first, then bilinear), bilinear growing."""
    src_h, src_w = pixels.shape[:2]
    factor = min(src_w / dst_wh[0], src_h / dst_wh[1])
    if factor < 1:
        return cv2.resize(pixels, dst_wh, interpolation=cv2.INTER_LINEAR)
    block = next((k for k in range(int(factor), 1, -1) if src_w % k == 0 and src_h % k == 0), 1)
    if block == 1:
        return cv2.resize(pixels, dst_wh, interpolation=cv2.INTER_AREA)
    averaged = cv2.resize(pixels, (src_w // block, src_h // block), interpolation=cv2.INTER_AREA)
    if averaged.shape[:2] == (dst_wh[1], dst_wh[0]):
        return averaged
    return cv2.resize(averaged, dst_wh, interpolation=cv2.INTER_LINEAR)


def network_input(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """An RGB frame letterboxed into NET_H x NET_W uint8 on black, and its placement."""
    px, py, cw, ch = box = letterbox(image.shape[1], image.shape[0], NET_W, NET_H)
    out = np.zeros((NET_H, NET_W, 3), np.uint8)
    out[py:py + ch, px:px + cw] = resize(image, (cw, ch))
    return out, box


def soft_labels(mask: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Each class's share of every input pixel (uint8, x 255); padding is background."""
    px, py, cw, ch = box
    labels = np.zeros((NET_H, NET_W, NUM_CLASSES), np.uint8)
    labels[..., 0] = 255
    onehot = (mask[..., None] == np.arange(NUM_CLASSES, dtype=np.uint8)).astype(np.float32)
    labels[py:py + ch, px:px + cw] = np.round(resize(onehot, (cw, ch)) * 255)
    return labels


def _worker_init() -> None:
    os.nice(10)  # the renderers yield to the process that feeds the GPU
    cv2.setNumThreads(1)


def render_chunk(job: tuple[int, int, float]) -> tuple[np.ndarray, np.ndarray]:
    """`count` training scenes of seed `seed`: inputs (n, H, W, 3) and soft labels (n, H, W, C)."""
    seed, count, shift_rate = job
    rng = np.random.default_rng(seed)
    spec = SceneSpec(shift_rate=shift_rate)
    images = np.zeros((count, NET_H, NET_W, 3), np.uint8)
    labels = np.zeros((count, NET_H, NET_W, NUM_CLASSES), np.uint8)
    for i in range(count):
        scene = generate_scene(rng, spec)
        images[i], box = network_input(scene.image)
        labels[i] = soft_labels(scene.mask, box)
    return images, labels


def render_held_out(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The plain held-out scenes at their own size (640x480): frames and masks."""
    stream = scene_stream(HELD_OUT_SEED, SceneSpec())
    frames, masks = [], []
    for _ in range(count):
        scene = next(stream)
        frames.append(scene.image)
        masks.append(scene.mask)
    return frames, masks


class ScenePool:
    """Training scenes on the GPU (uint8), filled by a thread from the render workers."""

    def __init__(self, pool, total: int, chunk: int, seed: int, shift_rate: float,
                 device: torch.device) -> None:
        self.total = total
        self.images = torch.empty((total, 3, NET_H, NET_W), dtype=torch.uint8, device=device)
        self.labels = torch.empty((total, NUM_CLASSES, NET_H, NET_W), dtype=torch.uint8,
                                  device=device)
        self.filled = 0
        self.error: BaseException | None = None
        self.cond = threading.Condition()
        jobs = [(seed * 100_003 + i, min(chunk, total - i * chunk), shift_rate)
                for i in range(math.ceil(total / chunk))]
        self.results = pool.imap_unordered(render_chunk, jobs)
        self.thread = threading.Thread(target=self._fill, daemon=True)
        self.thread.start()

    def _fill(self) -> None:
        try:
            for images, labels in self.results:
                n = len(images)
                s = self.filled
                self.images[s:s + n] = torch.from_numpy(images).permute(0, 3, 1, 2).to(
                    self.images.device)
                self.labels[s:s + n] = torch.from_numpy(labels).permute(0, 3, 1, 2).to(
                    self.labels.device)
                with self.cond:
                    self.filled = s + n
                    self.cond.notify_all()
        except BaseException as exc:  # a failing renderer stops training with its error
            with self.cond:
                self.error = exc
                self.cond.notify_all()

    def wait_for(self, count: int) -> float:
        """Block until `count` scenes are in (at most all of them); seconds waited."""
        start = time.perf_counter()
        with self.cond:
            while self.filled < min(count, self.total) and self.error is None:
                self.cond.wait(timeout=300)
            if self.error is not None:
                raise RuntimeError('a scene renderer failed') from self.error
        return time.perf_counter() - start


# ------------------------------------------------------------------------------ training

def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW RGB -> (pixel / 255 - mean) / std, float32: what the node feeds the model."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft-label cross-entropy + soft Dice, on the logits resized to the labels' size."""
    logits = F.interpolate(logits.float(), size=target.shape[-2:], mode='bilinear',
                           align_corners=False)
    log_p = F.log_softmax(logits, 1)
    ce = -(target * log_p).sum(1).mean()
    p = log_p.exp()
    inter = (p * target).sum((0, 2, 3))
    dice = 1 - ((2 * inter + 1) / (p.sum((0, 2, 3)) + target.sum((0, 2, 3)) + 1)).mean()
    return ce + dice


def flip(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips per batch half (the scenes have no up or left)."""
    half = len(images) // 2
    images, labels = images.clone(), labels.clone()
    if torch.rand(()) < 0.5:
        images[:half], labels[:half] = images[:half].flip(-1), labels[:half].flip(-1)
    if torch.rand(()) < 0.5:
        images[half:], labels[half:] = images[half:].flip(-2), labels[half:].flip(-2)
    return images, labels


def train(model: nn.Module, scenes: ScenePool, args, device: torch.device) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps,
                                                pct_start=0.08, div_factor=20,
                                                final_div_factor=200)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    model.train()
    start = time.perf_counter()
    waited = 0.0
    running = []
    amp = device.type == 'cuda'
    for step in range(args.steps):
        # the pool grows with the steps: by the end each scene has been drawn steps*batch/total
        waited += scenes.wait_for(max(args.min_pool, scenes.total * (step + 1) // args.steps))
        idx = torch.randint(0, scenes.filled, (args.batch,), device=device, generator=gen)
        images, labels = flip(scenes.images[idx], scenes.labels[idx])
        x = normalise(images).contiguous(memory_format=torch.channels_last)
        target = labels.float() / 255.0
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = loss_fn(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.detach())
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            mean = torch.stack(running).mean().item()
            running = []
            print(f'step {step + 1}/{args.steps} loss {mean:.4f} lr {sched.get_last_lr()[0]:.2e} '
                  f'pool {scenes.filled} {time.perf_counter() - start:.0f}s '
                  f'(waited for scenes {waited:.0f}s)', flush=True)
    return {'seconds': round(time.perf_counter() - start, 1),
            'waited_for_rendering_s': round(waited, 1), 'final_loss': round(mean, 4)}


# ------------------------------------------------------------------------ export, checks

def export(model: nn.Module, path: Path) -> None:
    import onnx

    model = model.cpu().float().eval().to(memory_format=torch.contiguous_format)
    x = torch.zeros(1, 3, NET_H, NET_W)
    torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False,
                      input_names=['image'], output_names=['logits'],
                      dynamic_axes={'image': {0: 'batch', 2: 'height', 3: 'width'},
                                    'logits': {0: 'batch', 2: 'out_h', 3: 'out_w'}})
    proto = onnx.load(str(path))
    if proto.ir_version > 8:  # what onnx 1.18 and onnxruntime 1.32 (the package's pins) read
        proto.ir_version = 8
        onnx.save(proto, str(path))
    onnx.checker.check_model(proto)


def ort_session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def check_export(session, model: nn.Module) -> dict:
    """ONNX against PyTorch on random inputs, at the trained size and at others (dynamic H, W)."""
    rng = np.random.default_rng(0)
    report = {}
    for n, h, w in ((2, NET_H, NET_W), (1, 240, 320), (1, 181, 263)):
        x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
        got = session.run(['logits'], {'image': x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape, (got.shape, want.shape)
        report[f'{n}x3x{h}x{w}'] = {'output': list(got.shape),
                                    'max_abs_diff': float(np.abs(got - want).max())}
    return report


def evaluate(session, frames: list[np.ndarray], masks: list[np.ndarray]) -> dict:
    """mIoU over all frames (one confusion matrix), each scored at its own size."""
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    mean = np.array(MEAN, np.float32)
    std = np.array(STD, np.float32)
    for frame, mask in zip(frames, masks):
        net, (px, py, cw, ch) = network_input(frame)
        x = ((net.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None]
        logits = session.run(['logits'], {'image': np.ascontiguousarray(x)})[0][0]
        e = np.exp(logits - logits.max(0, keepdims=True))
        probs = (e / e.sum(0, keepdims=True)).transpose(1, 2, 0)  # (h, w, C) on the output grid
        oh, ow = probs.shape[:2]
        fx, fy = ow / NET_W, oh / NET_H  # the letterbox on the output grid, edges rounded
        x0, y0 = math.floor(px * fx + 0.5), math.floor(py * fy + 0.5)
        x1 = max(x0 + 1, math.floor((px + cw) * fx + 0.5))
        y1 = max(y0 + 1, math.floor((py + ch) * fy + 0.5))
        content = np.ascontiguousarray(probs[y0:y1, x0:x1])
        full = cv2.resize(content, (frame.shape[1], frame.shape[0]),
                          interpolation=cv2.INTER_LINEAR)
        pred = full.argmax(-1)
        conf += np.bincount(mask.astype(np.int64).ravel() * NUM_CLASSES + pred.ravel(),
                            minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    return {'scenes': len(frames), 'mean_iou': round(float(np.nanmean(iou)), 4),
            'pixel_accuracy': round(float(tp.sum() / conf.sum()), 4),
            'iou': {name: round(float(v), 4) for name, v in zip(CLASS_NAMES, iou)}}


# ---------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--output', type=Path, default=Path('models/pytorch_example'))
    parser.add_argument('--steps', type=int, default=12000)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--weight-decay', type=float, default=1e-4)
    parser.add_argument('--scenes', type=int, default=48000, help='training scenes rendered')
    parser.add_argument('--min-pool', type=int, default=1024,
                        help='scenes rendered before the first step')
    parser.add_argument('--shift-rate', type=float, default=0.1,
                        help='probability of each of the generator\'s shifts per scene')
    parser.add_argument('--eval-scenes', type=int, default=200)
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument('--chunk', type=int, default=50)
    parser.add_argument('--seed', type=int, default=7)
    parser.add_argument('--log-every', type=int, default=1000)
    parser.add_argument('--report', type=Path, help='also write the report (JSON) here')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    # fork the renderers before CUDA starts; the held-out set goes first so it is ready at the end
    pool = get_context('fork').Pool(args.workers, initializer=_worker_init)
    held_out = pool.apply_async(render_held_out, (args.eval_scenes,))
    device = torch.device(args.device)
    scenes = ScenePool(pool, args.scenes, args.chunk, args.seed, args.shift_rate, device)

    model = Segmenter().to(device).to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    print(f'{params} parameters; {args.scenes} scenes by {args.workers} workers; '
          f'device {torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}', flush=True)
    stats = train(model, scenes, args, device)
    rendered = time.perf_counter() - t0
    frames, masks = held_out.get()
    pool.close()
    pool.join()

    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / 'model.onnx'
    export(model, path)
    session = ort_session(path)
    checks = check_export(session, model)
    score = evaluate(session, frames, masks)
    spec = {'input': {'height': NET_H, 'width': NET_W, 'dtype': 'float32',
                      'channel_order': 'rgb', 'mean': list(MEAN), 'std': list(STD),
                      'resize': 'letterbox'},
            'output': {'type': 'logits'},
            'class_names': list(CLASS_NAMES)}
    (args.output / 'model.json').write_text(json.dumps(spec, indent=2) + '\n')
    report = {'parameters': params, 'onnx_bytes': path.stat().st_size,
              'training': {'steps': args.steps, 'batch': args.batch, 'lr': args.lr,
                           'scenes': args.scenes, 'shift_rate': args.shift_rate,
                           'seed': args.seed, 'workers': args.workers, **stats,
                           'device': (torch.cuda.get_device_name() if device.type == 'cuda'
                                      else 'cpu'), 'torch': torch.__version__},
              'export_check': checks,
              'held_out': {'set': f'plain, seed {HELD_OUT_SEED}, 640x480 frames',
                           'measured_with': 'onnxruntime ' + __import__('onnxruntime').__version__
                           + ' CPUExecutionProvider', **score},
              'total_seconds': round(time.perf_counter() - t0, 1),
              'render_and_train_seconds': round(rendered, 1)}
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + '\n')
    print(json.dumps(report, indent=2))
    print(f'held-out mIoU (onnxruntime CPU, {score["scenes"]} scenes): {score["mean_iou"]}')


if __name__ == '__main__':
    main()
