"""RegionTracker (vision/tracker.py): ids across crossings and gaps, resets, confirmation, ages."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from jetson_seg.errors import ConfigurationError
from jetson_seg.vision.postprocess import Region
from jetson_seg.vision.tracker import RegionTracker, Track, TrackerParams

RATE = 120.0


def box(class_id: int, cx: float, cy: float, size: int = 30) -> Region:
    """A square region of `size` px centred near (cx, cy)."""
    x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
    return Region(class_id, x0, y0, x0 + size, y0 + size, size * size, 0.9)


def union(a: Region, b: Region) -> Region:
    """What segmentation gives for two touching objects of one class: one region."""
    return Region(a.class_id, min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1),
                  max(a.y1, b.y1), a.area + b.area, 0.9)


def overlaps(a: Region, b: Region) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def ids_by_region(tracks: list[Track]) -> dict[int, int]:
    """Region index -> track id, for the tracks seen in the frame."""
    return {t.region: t.track_id for t in tracks if t.region is not None}


def run(tracker: RegionTracker, frames: list[list[Region]], every: int = 1,
        start: float = 0.0) -> list[dict[int, int]]:
    """Feed every `every`-th frame at its 120 Hz stamp; the region -> id map of each."""
    return [ids_by_region(tracker.update(regions, start + k / RATE))
            for k, regions in enumerate(frames) if k % every == 0]


def two_crossing(frames: int, same_class: bool, speed: float = 6.0,
                 merge: bool = True) -> list[list[Region]]:
    """Objects on one row moving towards each other; list order = object (0 left-mover)."""
    out = []
    for k in range(frames):
        a = box(1, 100 + speed * k, 200)
        b = box(1 if same_class else 2, 100 + speed * (frames - 1) - speed * k, 203, 40)
        out.append([union(a, b)] if merge and same_class and overlaps(a, b) else [a, b])
    return out


@pytest.mark.parametrize('every', [1, 3])
@pytest.mark.parametrize('same_class', [True, False])
def test_ids_persist_through_a_crossing(same_class, every):
    frames = two_crossing(60, same_class)
    ids = run(RegionTracker(), frames, every)
    before, after = ids[9 // every], ids[-1]
    assert len(before) == len(after) == 2
    # object 0 starts left, ends right: its region index stays 0 (list order is per object)
    assert before == after, (before, after)


@pytest.mark.parametrize('every', [1, 3])
def test_id_persists_behind_an_occluder(every):
    """A small object passes behind a big one of another class: hidden for 12 frames."""
    frames = []
    for k in range(48):
        big = box(2, 300, 200, 90)
        small = box(1, 180 + 5 * k, 195, 20)
        hidden = big.x0 <= small.x0 and small.x1 <= big.x1
        frames.append([big] if hidden else [big, small])
    assert sum(len(regions) == 1 for regions in frames) >= 12
    ids = run(RegionTracker(), frames, every)
    assert ids[9 // every] == ids[-1] == {0: 1, 1: 2}


def bouncing_off_each_other(colors: bool) -> list[list[Region]]:
    """Two squares of one class and size meet and bounce back: one frame later each region is
    where the other's track predicts it (geometry alone swaps them); list order = object."""
    red, blue = ((1.0, 0.1, 0.1), (0.1, 0.1, 1.0)) if colors else (None, None)
    paths = [(100, 170), (110, 160), (120, 150), (130, 140), (120, 150), (110, 160), (100, 170)]
    return [[replace(box(1, a, 200), color=red), replace(box(1, b, 200), color=blue)]
            for a, b in paths]


@pytest.mark.parametrize('color_weight, kept', [(4.0, True), (0.0, False)])
def test_colours_keep_ids_where_geometry_swaps_them(color_weight, kept):
    frames = bouncing_off_each_other(colors=True)
    seen = run(RegionTracker(TrackerParams(color_weight=color_weight)), frames)
    assert (seen[-1] == seen[3]) is kept and len(seen[3]) == 2


def test_regions_without_colours_are_matched_by_geometry_alone():
    plain = run(RegionTracker(), bouncing_off_each_other(colors=False))
    geometry = run(RegionTracker(TrackerParams(color_weight=0.0)),
                   bouncing_off_each_other(colors=True))
    assert plain == geometry


@pytest.mark.parametrize('every', [2, 3])
def test_dropped_frames_keep_ids(every):
    """Two of three frames left out: the motion model predicts over the stamps' gaps."""
    frames = [[box(1, 50 + 20 * k, 100), box(2, 600 - 15 * k, 300 + 5 * k),
               box(3, 300, 50 + 10 * k)] for k in range(30)]
    ids = run(RegionTracker(), frames, every)
    seen = [m for m in ids if m]
    assert len(seen) >= 5
    assert all(m == seen[0] for m in seen) and len(seen[0]) == 3


def test_irregular_gaps_keep_ids():
    tracker = RegionTracker()
    stamps = [0, 1, 2, 5, 6, 9, 10, 11, 14, 15, 18]  # frames at 120 Hz, some left out
    ids = [ids_by_region(tracker.update([box(1, 40 + 18 * k, 200)], 10.0 + k / RATE))
           for k in stamps]
    assert {i for m in ids for i in m.values()} == {1}


def test_stamp_jumping_back_resets():
    tracker = RegionTracker()
    frames = [[box(1, 100 + 5 * k, 100)] for k in range(10)]
    first = run(tracker, frames, start=50.0)
    again = run(tracker, frames, start=20.0)  # a bag starting over
    assert first[-1] == {0: 1}
    assert again[:2] == [{}, {}], 'the old track must not continue'
    assert again[-1] == {0: 2}, 'a new id, never the old one'


def test_reset_forgets_tracks_but_ids_keep_counting():
    tracker = RegionTracker()
    run(tracker, [[box(1, 100, 100)]] * 4)
    tracker.reset()
    assert run(tracker, [[box(1, 100, 100)]] * 4, start=1.0)[-1] == {0: 2}


@pytest.mark.parametrize('min_hits', [1, 2, 3, 5])
def test_track_is_reported_once_confirmed(min_hits):
    tracker = RegionTracker(TrackerParams(min_hits=min_hits))
    ids = run(tracker, [[box(1, 100 + 4 * k, 100)] for k in range(8)])
    assert [bool(m) for m in ids] == [k + 1 >= min_hits for k in range(8)]


def test_unconfirmed_track_dies_at_its_first_miss():
    tracker = RegionTracker(TrackerParams(min_hits=3))
    frames = [[box(1, 100, 100)], [box(1, 100, 100)], [], [box(1, 100, 100)],
              [box(1, 100, 100)], [box(1, 100, 100)]]
    ids = run(tracker, frames)
    assert ids[-1] == {0: 2}, 'a flicker is not confirmed by hits on either side of a gap'


@pytest.mark.parametrize('gap_s, same_id', [(0.2, True), (0.35, False)])
def test_max_age_keeps_a_missed_track_for_that_long(gap_s, same_id):
    tracker = RegionTracker(TrackerParams(max_age=0.3))
    for k in range(5):
        tracker.update([box(1, 200, 200)], k / RATE)
    coasting = tracker.update([], gap_s / 2)
    assert [(t.track_id, t.region) for t in coasting] == [(1, None)]
    assert coasting[0].missed == pytest.approx(gap_s / 2 - 4 / RATE)
    back = tracker.update([box(1, 200, 200)], 4 / RATE + gap_s)
    assert ([t.track_id for t in back] == [1]) is same_id
    if not same_id:
        assert back == [], 'the object seen again is a new, unconfirmed track'


def test_ids_are_never_reused():
    tracker = RegionTracker(TrackerParams(min_hits=1, max_age=0.05))
    seen = []
    stamp = 0.0
    for burst in range(6):
        for k in range(3):  # an object appears, lives 3 frames, vanishes for good
            seen += [t.track_id for t in tracker.update([box(1, 50 + 90 * burst, 80)], stamp)]
            stamp += 1 / RATE
        stamp += 0.2  # longer than max_age: the track dies
        if burst == 2:
            tracker.reset()
        if burst == 4:
            stamp -= 5.0  # jump back: reset
    assert sorted(set(seen)) == list(range(1, 7))
    assert all(seen[3 * b:3 * b + 3] == [b + 1] * 3 for b in range(6))


def test_two_cameras_do_not_share_ids_or_state():
    left, right = RegionTracker(), RegionTracker()
    for k in range(5):
        a = left.update([box(1, 100 + 5 * k, 100), box(2, 300, 300)], k / RATE)
        b = right.update([box(3, 500 - 5 * k, 400)], 7.0 + k / RATE)
    assert [t.track_id for t in a] == [1, 2] and [t.track_id for t in b] == [1]
    assert b[0].class_id == 3 and b[0].age == pytest.approx(4 / RATE)
    right.reset()
    assert [t.track_id for t in left.update([box(1, 125, 100), box(2, 300, 300)], 5 / RATE)] \
        == [1, 2], 'one camera\'s reset leaves the other alone'
    # a shared counter keeps ids unique across the node's cameras
    counter = itertools.count(1)
    one, two = RegionTracker(ids=counter), RegionTracker(ids=counter)
    for k in range(3):
        first = one.update([box(1, 100, 100)], k / RATE)
        second = two.update([box(1, 100, 100)], k / RATE)
    assert {t.track_id for t in first}.isdisjoint({t.track_id for t in second})


@pytest.mark.parametrize('changes, word', [
    ({'min_hits': 0}, 'min_hits'), ({'min_hits': 2.5}, 'min_hits'),
    ({'min_hits': True}, 'min_hits'), ({'max_age': 0.0}, 'max_age'),
    ({'max_age': -1.0}, 'max_age'), ({'max_age': math.inf}, 'max_age'),
    ({'gate_size': math.nan}, 'gate_size'), ({'gate_motion': -0.1}, 'gate_motion'),
    ({'iou_weight': '1'}, 'iou_weight'), ({'velocity_smoothing': -0.01}, 'velocity_smoothing'),
    ({'max_cost': 0.0}, 'max_cost'), ({'max_speed': -5.0}, 'max_speed'),
    ({'size_weight': math.inf}, 'size_weight'),
    ({'gate_size': 0.0, 'gate_pixels': 0.0}, 'gate_pixels'),
    ({'class_change_cost': -1.0}, 'class_change_cost'),
])
def test_bad_parameters_are_refused_with_the_reason(changes, word):
    with pytest.raises(ConfigurationError, match=word):
        TrackerParams(**changes)


def test_parameters_accept_their_range():
    TrackerParams(min_hits=1, max_age=10.0, class_change_cost=math.inf, velocity_smoothing=0.0)
    tracker = RegionTracker()
    tracker.params = TrackerParams(min_hits=1)
    assert tracker.params.min_hits == 1
    with pytest.raises(ConfigurationError, match='TrackerParams'):
        tracker.params = {'min_hits': 1}


def test_velocity_and_age_on_a_known_linear_motion():
    vx, vy = 600.0, -240.0  # px/s: 5 px and -2 px a frame at 120 Hz
    tracker = RegionTracker()
    for k in range(40):
        tracks = tracker.update([box(2, 100 + vx * k / RATE, 300 + vy * k / RATE)], k / RATE)
    (track,) = tracks
    assert track.velocity[0] == pytest.approx(vx, rel=0.03)
    assert track.velocity[1] == pytest.approx(vy, rel=0.08)  # whole-pixel boxes
    assert track.age == pytest.approx(39 / RATE) and track.hits == 40 and track.missed == 0
    # coasting, the box is where the velocity takes it
    (coasting,) = tracker.update([], 45 / RATE)
    assert coasting.region is None
    assert (coasting.box[0] + coasting.box[2]) / 2 == pytest.approx(100 + vx * 45 / RATE,
                                                                    abs=2.0)


def test_same_stamp_twice_is_not_a_miss():
    tracker = RegionTracker(TrackerParams(min_hits=1))
    tracker.update([box(1, 100, 100)], 1.0)
    again = tracker.update([box(1, 100, 100)], 1.0)
    assert [(t.track_id, t.region, t.velocity) for t in again] == [(1, 0, (0.0, 0.0))]


def test_class_flicker_keeps_the_track_and_its_class():
    tracker = RegionTracker()
    for k in range(12):
        cls = 2 if k in (6, 9) else 1  # a blurred disc read as a rectangle twice
        tracks = tracker.update([box(cls, 100 + 8 * k, 100)], k / RATE)
    assert [(t.track_id, t.class_id) for t in tracks] == [(1, 1)]


@pytest.mark.parametrize('report', ['regions', 'tracks'])
def test_evaluation_scores_a_short_sequence(report):
    """The evaluation runs end to end; a broken tracker would fail these floors."""
    pytest.importorskip('motmetrics')
    from jetson_seg.tools.evaluate_tracking import evaluate
    from jetson_seg.training.sequences import SequenceSpec

    results = evaluate([3, 4], SequenceSpec(frames=48), ['truth'], [1, 3], report=report)
    assert set(results) == {'truth', 'truth ceiling'}
    for kept in ('every 1', 'every 3'):
        figures, ceiling = results['truth'][kept], results['truth ceiling'][kept]
        assert figures['idf1'] > 0.5 and figures['mota'] > 0.5, figures
        assert figures['num_objects'] == ceiling['num_objects'] > 0 and figures['frames'] > 0
        assert figures['num_switches'] >= 0 and 0 < figures['recall'] <= 1
        assert ceiling['num_switches'] == 0 and ceiling['idf1'] > 0.9, ceiling


def test_draw_tracks_marks_seen_tracks_only():
    from jetson_seg.vision.tracker import Track, draw_tracks

    seen = Track(track_id=7, class_id=1, box=(40.0, 40.0, 80.0, 70.0), velocity=(300.0, 0.0),
                 age=0.1, hits=5, missed=0.0, region=0, score=0.9, within=0)
    missed = Track(track_id=8, class_id=1, box=(120.0, 20.0, 150.0, 50.0), velocity=(0.0, 0.0),
                   age=0.1, hits=5, missed=0.05, region=None, score=0.9)
    image = np.zeros((100, 200, 3), np.uint8)
    draw_tracks(image, [seen, missed])
    assert image[40:70, 40:80].any() and image[28:40, 40:80].any()  # box, label above it
    assert image[55, 80:90].any()  # the heading arrow runs on to the right (300 px/s x 0.1 s)
    assert not image[20:50, 120:150].any()  # a missed track is not drawn


def test_tracks_in_a_merged_region_share_it_with_their_own_boxes():
    """Two discs crossing make one region: both tracks stay, each with its predicted box."""
    frames = two_crossing(60, same_class=True)
    tracker = RegionTracker()
    shared = 0
    for k, regions in enumerate(frames):
        tracks = tracker.update(regions, k / RATE)
        if len(regions) == 1 and len(tracks) == 2:
            owner, other = sorted(tracks, key=lambda t: t.region is None)
            assert owner.region == owner.within == other.within == 0 and other.region is None
            assert other.shares_region and not owner.shares_region
            (region,) = regions
            for track in tracks:  # inside the merged region, apart from one another
                x0, y0, x1, y1 = track.box
                assert region.x0 <= x0 < x1 <= region.x1 and region.y0 <= y0 < y1 <= region.y1
            shared += 1
    assert shared >= 5
    assert [t.track_id for t in tracks] == [1, 2] and all(t.region is not None for t in tracks)


def test_a_lone_track_near_another_region_is_not_a_merge():
    """A missed object whose prediction lies in another class's region is not put into it."""
    tracker = RegionTracker()
    for k in range(5):
        tracker.update([box(1, 100 + 5 * k, 100), box(2, 140, 100, 60)], k / RATE)
    tracks = tracker.update([box(2, 140, 100, 60)], 5 / RATE)  # the disc passes behind it
    assert [(t.track_id, t.region, t.within) for t in tracks] == [(1, None, None), (2, 0, 0)]


def test_evaluation_scores_a_merged_region_as_the_node_publishes_it_or_per_track():
    from jetson_seg.tools.evaluate_tracking import reported

    frames = two_crossing(60, same_class=True)
    tracker = RegionTracker()
    for k, regions in enumerate(frames):
        tracks = tracker.update(regions, k / RATE)
        if len(regions) == 1 and len(tracks) == 2:
            break
    (region,) = regions
    owner = next(t for t in tracks if t.region == 0)
    assert reported(tracks, regions, 'regions') == [
        (owner.track_id, (region.x0, region.y0, region.x1, region.y1))]
    assert reported(tracks, regions, 'tracks') == [(t.track_id, t.box) for t in tracks]


def test_hota_of_a_perfect_track_and_of_one_switched_halfway():
    """HOTA from its definition: one object, IoU 1; a switch halves association (AssA 0.5)."""
    pytest.importorskip('motmetrics')
    from jetson_seg.tools.evaluate_tracking import Scored, summarize
    from jetson_seg.training.sequences import TruthObject

    obj = TruthObject(1, 1, (10, 10, 40, 40), 900, 900, (25.0, 25.0), (0.0, 0.0))
    perfect, switched = Scored(), Scored()
    for k in range(4):
        perfect.add([obj], [(7, obj.box)])
        switched.add([obj], [(7 if k < 2 else 8, obj.box)])
    assert summarize([perfect])['hota'] == 1.0
    figures = summarize([switched])
    assert figures['deta'] == 1.0 and figures['assa'] == 0.5
    assert figures['hota'] == pytest.approx(math.sqrt(0.5), abs=1e-4)
    # a box of IoU 0.7 is a true positive at 14 of HOTA's 19 thresholds (0.05 ... 0.70)
    loose = Scored()
    loose.add([obj], [(7, (10, 10, 40, 31))])
    assert summarize([loose])['deta'] == pytest.approx(14 / 19, abs=1e-4)


def test_a_track_carries_its_last_centres_and_the_overlay_draws_them_as_a_trail():
    from jetson_seg.vision.tracker import TRAIL_POINTS, draw_tracks

    tracker = RegionTracker()
    for k in range(TRAIL_POINTS + 5):  # a 20x20 box moving 4 px a frame to the right
        tracks = tracker.update([Region(1, 10 + 4 * k, 50, 30 + 4 * k, 70, 400, 0.9)], k / RATE)
    (track,) = tracks
    assert len(track.trail) == TRAIL_POINTS  # the last ones only, oldest first
    assert track.trail[-1] == (20.0 + 4 * (TRAIL_POINTS + 4), 60.0)
    assert [x for x, _ in track.trail] == sorted(x for x, _ in track.trail)
    image = np.zeros((120, 200, 3), np.uint8)
    draw_tracks(image, [replace(track, trail=())])
    without = image.copy()
    draw_tracks(image, tracks)
    x_old = int(track.trail[0][0])
    assert image[60, x_old].any() and not without[60, x_old].any()  # the path behind it
