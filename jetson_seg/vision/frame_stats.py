"""Counters and rolling latency/fps figures for diagnostics and benchmarks."""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import numpy as np


def is_count(figure: str) -> bool:
    """Whether a `FrameStats.snapshot` figure counts frames (clients rebase these, not rates)."""
    return figure in ('received', 'answered', 'dropped', 'unwanted', 'rejected') or \
        figure.startswith('rejected.')


class FrameStats:
    """Thread-safe counts of received, answered, dropped and rejected frames, and latencies.

    Every received frame ends in exactly one count: answered, dropped (replaced by a newer
    frame), rejected (malformed, by reason) or unwanted (nothing to make: no subscriber to any
    output, or only viewer images held back by viewer_max_rate).
    Rates and stamp ages are read on `clock` (seconds): the node passes its ROS clock so that
    they follow /clock under use_sim_time; latencies are processing times and stay on the
    monotonic clock.
    """

    def __init__(self, window: int = 600, fps_window_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        self.received = 0
        self.answered = 0
        self.dropped = 0
        self.unwanted = 0
        self.fps_window_s = fps_window_s
        self.rejected: collections.Counter[str] = collections.Counter()
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=window)
        self._done_at: collections.deque[float] = collections.deque(maxlen=window)
        self._stage_ms: dict[str, collections.deque[float]] = {}
        # (clock time of arrival, stamp age in s or None) of the recent frames
        self._arrivals: collections.deque[tuple[float, float | None]] = \
            collections.deque(maxlen=window)

    def on_received(self, stamp_age_s: float | None = None) -> None:
        """Count a frame; `stamp_age_s` is clock now minus its header stamp, when known."""
        now = self.clock()
        with self._lock:
            self.received += 1
            self._arrivals.append((now, stamp_age_s))

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
            self._done_at.append(self.clock())
            for stage, ms in stages_ms.items():
                self._stage_ms.setdefault(stage, collections.deque(maxlen=200)).append(ms)

    def snapshot(self) -> dict[str, object]:
        """Figures over the recent window, flat, ready for a diagnostics KeyValue list."""
        now = self.clock()
        with self._lock:
            lat = np.array(self._latency_ms) if self._latency_ms else np.zeros(1)
            since = now - self.fps_window_s  # ends now: 0 once input stops
            fps = sum(t >= since for t in self._done_at) / self.fps_window_s
            recent = [(t, age) for t, age in self._arrivals if t >= since]
            ages = [age for _, age in recent if age is not None]
            ages_ms = np.array(ages) * 1e3 if ages else np.zeros(1)
            out: dict[str, object] = {
                'fps': round(fps, 2),
                'input_rate_hz': round(self._input_rate([t for t, _ in recent]), 2),
                'stamp_age_p50_ms': round(float(np.percentile(ages_ms, 50)), 2),
                'stamp_age_max_ms': round(float(ages_ms.max()), 2),
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

    @staticmethod
    def _input_rate(recent: list[float]) -> float:
        """Frames per second between the first and last arrival in the window (0 below two).

        Measured between arrivals rather than over the whole window, so a node that just
        started does not read as slow; a camera that stopped is caught by staleness instead.
        """
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])
