"""Figures of a run through the node: quality against ground truth, latency, drops; table, plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from jetson_seg.ros.messages import class_index
from jetson_seg.training.metrics import ConfusionMatrix, match_boxes
from jetson_seg.vision.pipeline import PipelineConfig


def summarize(records: Sequence, truth: Callable[[int], tuple[np.ndarray, list] | None],
              class_names: Sequence[str], rejected: int = 0,
              min_area: int = PipelineConfig.min_region_area) -> dict:
    """Quality, latency and counts over `records` (node_client.FrameRecord) in send order.

    `truth(key)` gives (ground-truth mask, ground-truth boxes) of a frame, or None. Truth
    regions below the node's `min_area` are ignored in detection P/R (metrics.match_boxes).
    Latency is send -> mask received, on this machine's clock.
    """
    conf = ConfusionMatrix(len(class_names))
    tp = fp = fn = 0
    latencies = []
    for rec in records:
        if rec.mask_at is None:
            continue
        latencies.append((rec.mask_at - rec.sent_at) * 1e3)
        expected = truth(rec.key)
        if expected is None:
            continue
        gt_mask, gt_boxes = expected
        conf.add(gt_mask, rec.mask)
        if rec.detections is not None:
            found = [(*d[:4], class_index(d[4], class_names)) for d in rec.detections]
            a, b, c = match_boxes(gt_boxes, found, 0.5, min_area)
            tp, fp, fn = tp + a, fp + b, fn + c
    lat = np.array(latencies) if latencies else np.full(1, np.nan)
    sent = len(records)
    span = records[-1].sent_at - records[0].sent_at if sent > 1 else 0.0
    answered = len(latencies)
    return {
        'frames_sent': sent, 'answered': answered, 'dropped': sent - answered,
        'rejected_by_node': rejected,
        'input_rate_hz': round((sent - 1) / span, 2) if span else None,
        'answered_fps': round(answered / span, 2) if span else None,
        'latency_ms': {name: round(float(np.percentile(lat, q)), 2)
                       for name, q in (('p50', 50), ('p90', 90), ('p99', 99), ('max', 100))},
        'mean_iou': round(conf.mean_iou(), 4),
        'pixel_accuracy': round(conf.pixel_accuracy(), 4),
        'iou': {n: round(float(v), 4) for n, v in zip(class_names, conf.iou())},
        'detection': {'precision': round(tp / max(tp + fp, 1), 4),
                      'recall': round(tp / max(tp + fn, 1), 4), 'iou_threshold': 0.5},
    }


def table(summary: dict, title: str) -> str:
    """The summary as aligned terminal lines."""
    lat = summary['latency_ms']
    det = summary['detection']
    rows = [
        ('frames sent / answered', f'{summary["frames_sent"]} / {summary["answered"]}'),
        ('dropped / rejected', f'{summary["dropped"]} / {summary["rejected_by_node"]}'),
        ('input rate / answered fps', f'{summary["input_rate_hz"]} Hz / '
                                      f'{summary["answered_fps"]} fps'),
        ('latency p50/p90/p99/max',
         ' / '.join(f'{lat[k]} ms' for k in ('p50', 'p90', 'p99', 'max'))),
        ('mIoU / pixel accuracy', f'{summary["mean_iou"]} / {summary["pixel_accuracy"]}'),
        ('per-class IoU', ', '.join(f'{k} {v}' for k, v in summary['iou'].items())),
        ('detections P / R @0.5', f'{det["precision"]} / {det["recall"]}'),
    ]
    width = max(len(r[0]) for r in rows)
    return '\n'.join([title] + [f'  {name:<{width}}  {value}' for name, value in rows])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Lines of a GitHub markdown table (README and benchmark output)."""
    return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] + [
        '| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]


def save_figure(fig, path: Path) -> None:
    """Lay out, write at 100 dpi and free a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_json(summary: dict, path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + '\n')


def plot_run(records: Sequence, path: Path, title: str) -> None:
    """Latency over time and sent/answered frames per second."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t0 = records[0].sent_at
    done = [(r.mask_at - t0, (r.mask_at - r.sent_at) * 1e3) for r in records
            if r.mask_at is not None]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    if done:
        ax1.plot(*zip(*done), '.', markersize=3)
    ax1.set_ylabel('latency (ms)\nsent -> mask received')
    ax1.set_title(title)
    ax1.grid(alpha=0.3)
    end = max(r.sent_at for r in records) - t0
    bins = np.arange(0, int(np.ceil(end)) + 2)
    ax2.step(bins[:-1], np.histogram([r.sent_at - t0 for r in records], bins)[0], where='post',
             label='sent (camera)')
    ax2.step(bins[:-1], np.histogram([d[0] for d in done], bins)[0], where='post',
             label='answered (node)')
    ax2.set_ylabel('frames per second')
    ax2.set_xlabel('time (s)')
    ax2.legend()
    ax2.grid(alpha=0.3)
    save_figure(fig, path)
