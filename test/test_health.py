"""Health rules (diagnostic levels), the bookkeeping behind them and the input figures, no DDS."""

from __future__ import annotations

import dataclasses

import pytest

from jetson_seg.ros.health import ERROR, OK, WARN, HealthConfig, HealthTracker, Observed, assess
from jetson_seg.vision.frame_stats import FrameStats

CONFIG = HealthConfig(expected_rate=30.0, rate_tolerance=0.1, stale_after=2.0)
HEALTHY = Observed(state='active', silence_s=0.03, input_rate_hz=30.0, rejected_since_report=0,
                   failed_since_report=0)


def _with(**changes) -> Observed:
    return dataclasses.replace(HEALTHY, **changes)


@pytest.mark.parametrize('seen,level,fragment', [
    (HEALTHY, OK, 'running'),
    (_with(input_rate_hz=27.5), OK, 'running'),  # within 10 %
    (_with(input_rate_hz=20.0), WARN, 'input rate 20.0 Hz below expected 30 Hz'),
    (_with(silence_s=5.0, input_rate_hz=0.0), WARN, 'no image for 5.0 s'),
    (_with(silence_s=3.0, quiet_camera='rear'), WARN, 'no image from rear for 3.0 s'),
    (_with(rejected_since_report=3), WARN, '3 malformed frames'),
    (_with(failed_since_report=2, last_failure='RuntimeError()'), ERROR, 'engine failed'),
    (_with(state='inactive'), WARN, 'inactive'),
    (_with(state='unconfigured'), ERROR, 'unconfigured: no model loaded'),
    (_with(state='unconfigured', configure_error='missing model /x'), ERROR, 'missing model /x'),
])
def test_levels(seen, level, fragment):
    got_level, text = assess(CONFIG, seen)
    assert got_level == level and fragment in text, (got_level, text)


def test_the_worst_problem_comes_first_and_every_problem_is_named():
    level, text = assess(CONFIG, _with(silence_s=9.0, failed_since_report=1,
                                       rejected_since_report=4, last_failure='boom'))
    assert level == ERROR
    assert text.startswith('engine failed') and 'no image' in text and '4 malformed' in text


def test_zero_turns_checks_off():
    off = HealthConfig(expected_rate=0.0, stale_after=0.0)
    assert assess(off, _with(silence_s=1e6, input_rate_hz=0.0)) == (OK, 'running')


class FakeClock:
    """A clock the test moves, standing in for the node's (sim) clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_input_rate_and_stamp_ages_are_read_on_the_given_clock():
    clock = FakeClock()
    stats = FrameStats(fps_window_s=2.0, clock=clock)
    for index in range(10):  # 20 Hz on this clock, stamps 50 ms old on arrival
        stats.on_received(stamp_age_s=0.05 if index < 9 else 0.4)
        clock.now += 0.05
    figures = stats.snapshot()
    assert figures['input_rate_hz'] == pytest.approx(20.0)
    assert figures['stamp_age_p50_ms'] == pytest.approx(50.0)
    assert figures['stamp_age_max_ms'] == pytest.approx(400.0)
    clock.now += 10.0  # nothing since: the window is empty, the rate unknown (0)
    assert stats.snapshot()['input_rate_hz'] == 0.0


def test_a_slow_camera_is_measured_over_a_window_long_enough_for_it():
    clock = FakeClock()
    stats = FrameStats(fps_window_s=8.0, clock=clock)  # the node's window for 0.5 Hz
    for _ in range(4):
        stats.on_received()
        clock.now += 2.0
    assert stats.snapshot()['input_rate_hz'] == pytest.approx(0.5)


def _active(now: float = 10.0) -> HealthTracker:
    tracker = HealthTracker()
    tracker.activated(now)
    return tracker


def test_counts_are_those_since_the_previous_report():
    tracker = _active()
    first = tracker.observe(11.0, ('',), 30.0, rejected_total=5, failed_total=2)
    assert (first.rejected_since_report, first.failed_since_report) == (3, 2)  # 5 - 2 failed
    quiet = tracker.observe(12.0, ('',), 30.0, rejected_total=5, failed_total=2)
    assert (quiet.rejected_since_report, quiet.failed_since_report) == (0, 0)
    later = tracker.observe(13.0, ('',), 30.0, rejected_total=9, failed_total=3)
    assert (later.rejected_since_report, later.failed_since_report) == (3, 1)


def test_silence_is_the_quietest_cameras_and_named_only_among_several():
    tracker = _active(10.0)
    tracker.saw_image('front', 14.0)
    tracker.saw_image('rear', 12.5)
    seen = tracker.observe(15.0, ('front', 'rear'), 60.0, 0, 0)
    assert seen.quiet_camera == 'rear' and seen.silence_s == 2.5
    assert seen.input_rate_hz == 30.0  # per camera
    alone = tracker.observe(15.0, ('rear',), 30.0, 0, 0)
    assert alone.quiet_camera == '' and alone.silence_s == 2.5


def test_a_camera_never_heard_from_is_silent_since_activation():
    tracker = _active(10.0)
    tracker.saw_image('front', 9.0)  # before this activation: does not count
    seen = tracker.observe(13.0, ('front', 'side'), 0.0, 0, 0)
    assert seen.silence_s == 3.0 and seen.quiet_camera in ('front', 'side')
    assert assess(CONFIG, seen)[0] == WARN


def test_activation_at_time_zero_counts_from_the_first_report():
    """Under use_sim_time the node may activate before /clock ticks: its clock reads 0."""
    tracker = _active(0.0)
    assert tracker.observe(500.0, ('',), 0.0, 0, 0).silence_s == 0.0
    assert tracker.observe(503.0, ('',), 0.0, 0, 0).silence_s == 3.0


def test_state_and_errors_reach_the_assessment():
    tracker = HealthTracker()
    tracker.configure_error = 'missing model /x'
    assert assess(CONFIG, tracker.observe(1.0, (), 0.0, 0, 0)) == \
        (ERROR, 'unconfigured: no model loaded: missing model /x')
    tracker.activated(2.0)
    tracker.last_failure = 'RuntimeError()'
    level, text = assess(CONFIG, tracker.observe(2.5, ('',), 30.0, 1, 1))
    assert level == ERROR and text == 'engine failed on 1 frame(s): RuntimeError()'


def test_a_report_adds_the_node_figures_to_the_frame_figures():
    tracker = _active(10.0)
    tracker.saw_image('', 11.0)
    figures = {'input_rate_hz': 12.0, 'rejected': 3, 'rejected.processing_error': 1}
    level, text, out = tracker.report(12.5, CONFIG, ('',), figures, 'litert/int8')
    assert (level, text) == (ERROR, 'engine failed on 1 frame(s): ; input rate 12.0 Hz below '
                                    'expected 30 Hz (tolerance 10%); 2 malformed frames '
                                    'rejected since last report')
    assert out == {**figures, 'depth_used': 0, 'depth_rejected': 0, 'state': 'active',
                   'engine': 'litert/int8', 'cameras': 1, 'since_last_input_s': 1.5,
                   'expected_rate_hz': 30.0}


def test_depth_images_are_counted_apart_from_frames_and_warn_once():
    tracker = _active(10.0)
    tracker.saw_image('', 11.0)
    tracker.depth.on_used()
    tracker.depth.on_rejected('truncated')
    tracker.depth.on_rejected('depth_mismatch')
    tracker.depth.on_rejected('truncated')
    figures = {'input_rate_hz': 30.0, 'rejected': 0}
    level, text, out = tracker.report(11.5, CONFIG, ('',), figures, 'litert')
    assert (level, text) == (WARN, '3 depth images rejected since last report')
    assert (out['depth_used'], out['depth_rejected'], out['depth_rejected.truncated'],
            out['depth_rejected.depth_mismatch']) == (1, 3, 2, 1)
    assert out['rejected'] == 0  # frames: a depth image is none
    assert tracker.report(11.6, CONFIG, ('',), figures, 'litert')[:2] == (OK, 'running')
