"""Health rules (diagnostic levels) and the input figures they read, without DDS."""

from __future__ import annotations

import dataclasses

import pytest

from jetson_seg.ros.health import ERROR, OK, WARN, HealthConfig, Observed, assess
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
