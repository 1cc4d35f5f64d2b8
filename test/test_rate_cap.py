"""RateCap: the viewer images' rate cap, on a clock the test moves."""

import pytest

from jetson_seg.vision.rate_cap import RateCap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _grants(cap: RateCap, clock: Clock, rate_hz: float, seconds: float, key: str = 'cam',
            jitter: float = 0.0) -> int:
    """Frames at `rate_hz` (alternately early and late by `jitter` s): how many were allowed."""
    start, granted = clock.now, 0
    for i in range(int(rate_hz * seconds)):
        clock.now = start + i / rate_hz + (jitter if i % 2 else -jitter)
        granted += cap.allow(key)
    return granted


@pytest.mark.parametrize('jitter', [0.0, 0.002])
def test_a_cap_of_half_the_camera_rate_grants_every_other_frame(jitter):
    clock = Clock()
    cap = RateCap(15.0, clock)
    assert _grants(cap, clock, 30.0, 10.0, jitter=jitter) == 150


def test_no_cap_grants_every_frame_and_a_cap_above_the_camera_rate_changes_nothing():
    clock = Clock()
    assert _grants(RateCap(0.0, clock), clock, 30.0, 2.0) == 60
    assert _grants(RateCap(100.0, clock), clock, 30.0, 2.0) == 60


def test_cameras_are_capped_apart_and_a_new_rate_applies_at_once():
    clock = Clock()
    cap = RateCap(10.0, clock)
    for i in range(120):  # two cameras at 60 Hz for 2 s, interleaved
        clock.now = 100.0 + i / 60.0
        cap.allow('front')
        cap.allow('rear')
    clock.now += 1.0
    assert _grants(cap, clock, 60.0, 3.0, 'front') in (30, 31)  # 10 Hz, edges aside
    cap.rate = 30.0
    assert _grants(cap, clock, 60.0, 2.0, 'rear') in (60, 61)


def test_after_a_pause_one_frame_is_granted_then_the_cap_holds():
    clock = Clock()
    cap = RateCap(5.0, clock)
    assert _grants(cap, clock, 50.0, 10.0) in (50, 51)
    clock.now += 30.0  # the camera stopped; it comes back at 50 Hz
    assert cap.allow('cam') and not cap.allow('cam')  # one frame now, no burst after it
    clock.now += 0.02
    assert not cap.allow('cam')
    clock.now += 0.2
    assert cap.allow('cam')
    assert _grants(cap, clock, 50.0, 10.0) in (50, 51)
