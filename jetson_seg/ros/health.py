"""The node's health as one diagnostic level and message, the way diagnostic_updater reports it.

rclpy-free so the rules are unit-tested alone: ERROR when the node cannot segment (unconfigured,
configure failed, frames failing in the engine), WARN when it could but the input is not what it
should be (stale, slower than expected, malformed) or it is deliberately inactive, OK otherwise.
Every problem found is named in the message, worst first.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


@dataclass(frozen=True)
class HealthConfig:
    """What the input should look like; 0 turns a check off."""

    expected_rate: float = 0.0  # Hz
    rate_tolerance: float = 0.1  # WARN below expected_rate * (1 - tolerance)
    stale_after: float = 2.0  # s without an input frame while active

    @property
    def rate_window_s(self) -> float:
        """Seconds the frame rate is measured over: a few frames even of a slow camera."""
        return max(2.0, 4.0 / self.expected_rate) if self.expected_rate > 0 else 2.0


@dataclass(frozen=True)
class Observed:
    """What the node saw since its last report; times in seconds on the node clock."""

    state: str  # lifecycle state label: unconfigured, inactive, active, finalized
    silence_s: float  # of the quietest camera: since its last frame, or since activation
    input_rate_hz: float  # per camera (the node's total over its cameras)
    rejected_since_report: int
    failed_since_report: int
    configure_error: str = ''
    last_failure: str = ''
    quiet_camera: str = ''  # named when the node serves several
    depth_rejected_since_report: int = 0  # depth images that could not be used


def assess(config: HealthConfig, seen: Observed) -> tuple[int, str]:
    """(level, message) of the node's health."""
    if seen.state != 'active':
        if seen.state == 'inactive':
            return WARN, 'inactive: configured but not processing (activate it)'
        reason = f': {seen.configure_error}' if seen.configure_error else ''
        return ERROR, f'{seen.state}: no model loaded{reason}'
    problems: list[tuple[int, str]] = []
    if seen.failed_since_report:
        problems.append((ERROR, f'engine failed on {seen.failed_since_report} frame(s): '
                                f'{seen.last_failure}'))
    if config.stale_after > 0 and seen.silence_s > config.stale_after:
        source = f' from {seen.quiet_camera}' if seen.quiet_camera else ''
        problems.append((WARN, f'no image{source} for {seen.silence_s:.1f} s (stale_after '
                               f'{config.stale_after:g} s)'))
    elif config.expected_rate > 0 and \
            seen.input_rate_hz < config.expected_rate * (1.0 - config.rate_tolerance):
        problems.append((WARN, f'input rate {seen.input_rate_hz:.1f} Hz below expected '
                               f'{config.expected_rate:g} Hz (tolerance '
                               f'{config.rate_tolerance:.0%})'))
    if seen.rejected_since_report:
        problems.append((WARN, f'{seen.rejected_since_report} malformed frames rejected since '
                               f'last report'))
    if seen.depth_rejected_since_report:
        problems.append((WARN, f'{seen.depth_rejected_since_report} depth images rejected since '
                               f'last report'))
    if not problems:
        return OK, 'running'
    problems.sort(key=lambda item: -item[0])
    return problems[0][0], '; '.join(text for _, text in problems)


class DepthCounts:
    """Depth images of every camera: paired with a frame and used, or rejected by reason.

    Apart from the frame counts (FrameStats): a depth image is no frame, and frames without
    one are answered in 2D as before. Fed from the subscription and the publishing threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.used = 0
        self.rejected: collections.Counter[str] = collections.Counter()

    def on_used(self) -> None:
        with self._lock:
            self.used += 1

    def on_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    @property
    def rejected_total(self) -> int:
        with self._lock:
            return sum(self.rejected.values())

    def figures(self) -> dict[str, int]:
        """depth_used, depth_rejected and depth_rejected.<reason>, for the diagnostics."""
        with self._lock:
            out = {'depth_used': self.used, 'depth_rejected': sum(self.rejected.values())}
            out.update({f'depth_rejected.{reason}': count
                        for reason, count in sorted(self.rejected.items())})
        return out


class HealthTracker:
    """What the node saw between two diagnostics reports, turned into an `Observed`.

    The node tells it about lifecycle changes and image arrivals; times are the node clock's
    seconds (ROS time: /clock under use_sim_time), handed in by the caller.
    """

    def __init__(self) -> None:
        self.state = 'unconfigured'  # lifecycle state label
        self.configure_error = ''  # why the last configure failed ('' once one succeeds)
        self.last_failure = ''  # repr of the last error a frame failed with
        self._active_since = 0.0
        self._last_seen: dict[str, float] = {}  # camera -> time of its last image
        self.depth = DepthCounts()
        self._reported = {'rejected': 0, 'failed': 0, 'depth_rejected': 0}  # at the last report

    def activated(self, now: float) -> None:
        self.state, self._active_since = 'active', now

    def saw_image(self, camera: str, now: float) -> None:
        self._last_seen[camera] = now

    def _since_report(self, key: str, total: int) -> int:
        recent, self._reported[key] = total - self._reported[key], total
        return recent

    def observe(self, now: float, cameras: tuple[str, ...], input_rate_hz: float,
                rejected_total: int, failed_total: int) -> Observed:
        """What the node saw; the counts are those since the previous call.

        `rejected_total` counts every frame not processed for a fault, `failed_total` those of
        them that failed in processing: the rest were malformed.
        """
        failed = self._since_report('failed', failed_total)
        rejected = self._since_report('rejected', rejected_total) - failed
        if self.state == 'active' and self._active_since <= 0.0:
            self._active_since = now  # activated under use_sim_time before /clock started
        silence = {cam: now - max(self._active_since, self._last_seen.get(cam, 0.0))
                   for cam in cameras}  # a camera silent since activation counts too
        quietest = max(silence, key=silence.get, default='')
        return Observed(state=self.state, silence_s=silence.get(quietest, 0.0),
                        quiet_camera=quietest if len(cameras) > 1 else '',
                        input_rate_hz=input_rate_hz / max(1, len(cameras)),
                        rejected_since_report=rejected, failed_since_report=failed,
                        configure_error=self.configure_error, last_failure=self.last_failure,
                        depth_rejected_since_report=self._since_report(
                            'depth_rejected', self.depth.rejected_total))

    def report(self, now: float, config: HealthConfig, cameras: tuple[str, ...],
               figures: dict[str, object], engine: str) -> tuple[int, str, dict[str, object]]:
        """(level, message, figures) of a diagnostics report from a FrameStats snapshot."""
        seen = self.observe(now, cameras, figures['input_rate_hz'], figures['rejected'],
                            figures.get('rejected.processing_error', 0))
        level, text = assess(config, seen)
        return level, text, {**figures, **self.depth.figures(), 'state': seen.state,
                             'engine': engine, 'cameras': len(cameras),
                             'since_last_input_s': round(seen.silence_s, 3),
                             'expected_rate_hz': config.expected_rate}
