"""Segmentation and detection quality: confusion matrix, IoU, pixel accuracy, box matching."""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Accumulates a confusion matrix over many frames (rows: truth, columns: prediction)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def add(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        if truth.shape != prediction.shape:
            raise ValueError(f'mask shapes differ: truth {truth.shape}, '
                             f'prediction {prediction.shape}')
        idx = truth.astype(np.int64).ravel() * self.num_classes + prediction.ravel()
        self.matrix += np.bincount(idx, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """Per-class IoU over everything added; NaN for a class seen in neither mask."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(union > 0, tp / union, np.nan)

    def mean_iou(self) -> float:
        return float(np.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        return float(np.trace(self.matrix) / max(self.matrix.sum(), 1))


def box_iou(a: tuple, b: tuple) -> float:
    """IoU of two (x0, y0, x1, y1) boxes with exclusive right/bottom edges."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(truth: list, predicted: list, threshold: float = 0.5,
                min_area: int = 0) -> tuple[int, int, int]:
    """Greedy one-to-one matching of same-class boxes; returns (true pos, false pos, false neg).

    Boxes are (x0, y0, x1, y1, class), truth boxes may add their region's pixel count. A truth
    region smaller than `min_area` (the detector's own region filter) cannot be reported by
    design: it is ignored, COCO-style. It is no miss, and a detection matching it is neither
    a hit nor a false alarm (slivers left where another object covers most of one).
    """
    def ignored(t: tuple) -> bool:
        return len(t) > 5 and t[5] < min_area

    counted_first = sorted(enumerate(truth), key=lambda it: ignored(it[1]))
    used = set()
    tp = fp = 0
    for p in predicted:
        best, best_iou = None, threshold
        for i, t in counted_first:
            if i in used or t[4] != p[4]:
                continue
            iou = box_iou(p, t)
            if iou >= best_iou and (best is None or ignored(truth[best]) == ignored(t)):
                best, best_iou = i, iou
        if best is None:
            fp += 1
        else:
            used.add(best)
            tp += not ignored(truth[best])
    counted = sum(not ignored(t) for t in truth)
    return tp, fp, counted - tp
