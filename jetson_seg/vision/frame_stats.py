"""Counters and rolling latency/fps figures for diagnostics and benchmarks."""

from __future__ import annotations

import collections
import threading
import time

import numpy as np


def is_count(figure: str) -> bool:
    """Whether a `FrameStats.snapshot` figure counts frames (clients rebase these, not rates)."""
    return figure in ('received', 'answered', 'dropped', 'unwanted', 'rejected') or \
        figure.startswith('rejected.')


class FrameStats:
    """Thread-safe counts of received, answered, dropped and rejected frames, and latencies.

    Every received frame ends in exactly one count: answered, dropped (replaced by a newer
    frame), rejected (malformed, by reason) or unwanted (no subscriber to any output).
    """

    def __init__(self, window: int = 600, fps_window_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.answered = 0
        self.dropped = 0
        self.unwanted = 0
        self.fps_window_s = fps_window_s
        self.rejected: collections.Counter[str] = collections.Counter()
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=window)
        self._done_at: collections.deque[float] = collections.deque(maxlen=window)
        self._stage_ms: dict[str, collections.deque[float]] = {}

    def on_received(self) -> None:
        with self._lock:
            self.received += 1

    def on_dropped(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_unwanted(self) -> None:
        with self._lock:
            self.unwanted += 1

    def on_rejected(self, reason: str, frames: int = 1) -> None:
        with self._lock:
            self.rejected[reason] += frames

    def on_answered(self, latency_ms: float, stages_ms: dict[str, float]) -> None:
        with self._lock:
            self.answered += 1
            self._latency_ms.append(latency_ms)
            self._done_at.append(time.monotonic())
            for stage, ms in stages_ms.items():
                self._stage_ms.setdefault(stage, collections.deque(maxlen=200)).append(ms)

    def snapshot(self) -> dict[str, object]:
        """Figures over the recent window, flat, ready for a diagnostics KeyValue list."""
        with self._lock:
            lat = np.array(self._latency_ms) if self._latency_ms else np.zeros(1)
            since = time.monotonic() - self.fps_window_s  # ends now: 0 once input stops
            fps = sum(t >= since for t in self._done_at) / self.fps_window_s
            out: dict[str, object] = {
                'fps': round(fps, 2),
                'latency_p50_ms': round(float(np.percentile(lat, 50)), 2),
                'latency_p99_ms': round(float(np.percentile(lat, 99)), 2),
                'received': self.received, 'answered': self.answered,
                'dropped': self.dropped, 'unwanted': self.unwanted,
                'rejected': sum(self.rejected.values()),
            }
            for reason, count in sorted(self.rejected.items()):
                out[f'rejected.{reason}'] = count
            for stage, values in self._stage_ms.items():
                out[f'stage_ms.{stage}'] = round(float(np.median(values)), 3)
            return out
