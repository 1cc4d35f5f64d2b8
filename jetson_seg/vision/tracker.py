"""Track one camera's regions across frames: persistent ids, velocities (px/s) and ages (s).

A one-way step after the regions (postprocess.Region), for one camera: the node keeps one
RegionTracker per camera and calls `update(regions, stamp)` once per answered frame with the
frame's header stamp in seconds.

Why stamps and not frame counts: newest-frame-wins drops frames, a slower machine answers fewer,
and a bag played with sim time may run at any speed; the motion model predicts each track over
the real time between its frames (constant velocity), so a track survives gaps. A stamp that
goes back (a bag starting over) empties the tracker; ids keep counting so none is ever reused.

Association: one assignment (scipy's linear_sum_assignment) over a cost mixing the centre
distance to the predicted box (scaled by a gate that grows with the object's size and with how
far it may have moved since it was last seen), the IoU of the boxes, their sizes and colours (a
region's median colour against the track's running average: objects that cross or part look
alike in place and size, rarely in colour); a class change costs extra. A track is reported
once it has been seen `min_hits` frames in a row and kept through misses for `max_age` seconds
(crossings, occlusions, dropped frames).

Merges: two objects of one class that touch or cross make one connected region, which the
assignment gives to one track only. A confirmed track left unmatched whose predicted box lies
mostly (MERGED_INSIDE) in a region of its class that also holds another track is in that
region: every track of such a region keeps its velocity and takes its predicted box moved
into the region (the merged box is no measurement of either object), and is reported as seen
there (`within`), so identities and boxes survive the crossing.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from jetson_seg.errors import ConfigurationError
from jetson_seg.vision.postprocess import Region


@dataclass(frozen=True)
class TrackerParams:
    """Tracking settings (the node declares one parameter per field, same name and default)."""

    min_hits: int = 3  # frames in a row a track must be seen before it is reported
    max_age: float = 0.3  # s a track is kept without being seen
    gate_size: float = 2.0  # match radius: the object's size (sqrt of box area) x this ...
    gate_motion: float = 2.0  # ... plus its speed x the time since last seen x this ...
    gate_pixels: float = 16.0  # ... plus this many pixels
    max_speed: float = 3000.0  # px/s a track seen once may have moved at (its speed unknown)
    iou_weight: float = 1.0  # weight of 1 - IoU beside the centre distance in the cost
    size_weight: float = 0.5  # weight of |log(area ratio)| of track and region in the cost
    # (sizes tell crossing objects apart; merged regions are no longer measurements)
    color_weight: float = 4.0  # weight of the distance between the track's colour and the
    # region's (Region.color, 0-1 per channel, divided by sqrt(channels)) in the cost
    tentative_cost: float = 0.3  # added for unconfirmed tracks: confirmed ones match first
    class_change_cost: float = 0.5  # added where the class differs (inf: never matched)
    max_cost: float = 3.0  # a pair costing more is never matched: both stay unmatched
    velocity_smoothing: float = 0.02  # s, time constant of the velocity's exponential average

    def __post_init__(self) -> None:
        reason = self.problem()
        if reason:
            raise ConfigurationError(f'tracking parameters: {reason}')

    def problem(self) -> str | None:
        """Why these values cannot work, or None."""
        if isinstance(self.min_hits, bool) or not isinstance(self.min_hits, int) or \
                self.min_hits < 1:
            return f'min_hits must be an integer >= 1, got {self.min_hits!r}'
        floats = {name: getattr(self, name) for name in (
            'max_age', 'gate_size', 'gate_motion', 'gate_pixels', 'max_speed', 'iou_weight',
            'size_weight', 'color_weight', 'tentative_cost', 'class_change_cost', 'max_cost',
            'velocity_smoothing')}
        for name, value in floats.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    math.isnan(value) or value < 0 or \
                    math.isinf(value) and name != 'class_change_cost':
                return f'{name} must be a finite number >= 0, got {value!r}'
        if self.max_age <= 0:
            return f'max_age must be > 0 s (tracks must outlive one frame), got {self.max_age}'
        if self.max_cost == 0:
            return 'max_cost is 0: no region could ever match a track'
        if self.gate_size == 0 and self.gate_pixels == 0:
            return 'gate_size and gate_pixels are both 0: no region could ever match a track'
        return None


@dataclass(frozen=True)
class Track:
    """A confirmed track as of one frame."""

    track_id: int  # unique while the tracker lives (reset() included)
    class_id: int  # the class its regions had most often
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 px: its own region's; in a
    # merged region, its predicted box moved into that region; when not seen, predicted
    velocity: tuple[float, float]  # px/s in the image (x right, y down), smoothed
    age: float  # s since the track was first seen
    hits: int  # frames it was seen in
    missed: float  # s since it was last seen (0 when seen in this frame)
    region: int | None  # index of the region reported with its id (one track per region);
    # None when not seen, or when it shares a merged region another track is reported with
    score: float  # the last region's score
    within: int | None = None  # index of the region it is in: `region`, or the merged region
    # it shares (region None); None when not seen
    trail: tuple[tuple[float, float], ...] = ()  # its box centres of the last TRAIL_POINTS
    # frames it was seen in, oldest first (the overlay's motion trail)

    @property
    def shares_region(self) -> bool:
        """In a merged region reported with another track's id: its box is a prediction."""
        return self.region is None and self.within is not None


#: Pixels by which a box's two edges along an axis may move differently and still both be the
#: object's (segmentation noise); beyond, one of them is taken to follow an occluder.
EDGES_AGREE = 3.0

#: Cost of a pair outside the gate: never chosen while leaving both unmatched is cheaper.
_NEVER = 1e9

#: Share of a track's predicted box that must lie in a region for the track to be in it.
MERGED_INSIDE = 0.5

#: Centres a track's trail keeps: at 120 Hz, the last 0.1 s of its path.
TRAIL_POINTS = 12

#: Share of the gap to a new region's colour a track's colour closes (an exponential average
#: over the frames it is seen in alone: lighting drifts, one frame's mask may be off).
COLOR_SMOOTHING = 0.3


class _State:
    """A track's state: last measured box, velocity (px/s), times and counts."""

    __slots__ = ('track_id', 'class_id', 'votes', 'cx', 'cy', 'w', 'h', 'vx', 'vy', 'first',
                 'last', 'hits', 'score', 'confirmed', 'region', 'within', 'box', 'trail',
                 'color')

    def __init__(self, track_id: int, region: Region, index: int, stamp: float) -> None:
        self.track_id = track_id
        self.class_id = region.class_id
        self.votes: dict[int, int] = {}
        self.vx = self.vy = 0.0
        self.first = stamp
        self.hits = 0
        self.confirmed = False
        self.color: tuple[float, ...] | None = None
        self.trail: collections.deque[tuple[float, float]] = \
            collections.deque(maxlen=TRAIL_POINTS)
        self._measure(region, index, stamp)

    def _seen(self, region: Region, index: int, stamp: float) -> None:
        """Count a frame seen in `region`; the track's class is the one it had most often."""
        votes = self.votes[region.class_id] = self.votes.get(region.class_id, 0) + 1
        if votes > self.votes.get(self.class_id, 0):
            self.class_id = region.class_id
        self.score = region.score
        self.last = stamp
        self.hits += 1
        self.within = index
        self.trail.append((self.cx, self.cy))

    def _measure(self, region: Region, index: int, stamp: float) -> None:
        """Take the region's box (and colour) as the object's."""
        color = region.color
        if color is not None:
            if self.color is not None and len(self.color) == len(color):
                color = tuple(old + COLOR_SMOOTHING * (new - old)
                              for old, new in zip(self.color, color))
            self.color = color
        self.cx, self.cy = (region.x0 + region.x1) / 2, (region.y0 + region.y1) / 2
        self.w, self.h = float(region.x1 - region.x0), float(region.y1 - region.y0)
        self.box = (float(region.x0), float(region.y0), float(region.x1), float(region.y1))
        self.region = index
        self._seen(region, index, stamp)

    def share(self, region: Region, index: int, stamp: float, owner: bool) -> None:
        """Seen in a merged region: the predicted box moved into it; velocity and size kept."""
        x0, y0, x1, y1 = self.box_at(stamp)
        x0, x1 = _fit(x0, x1, region.x0, region.x1)
        y0, y1 = _fit(y0, y1, region.y0, region.y1)
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.box = (x0, y0, x1, y1)
        self.region = index if owner else None
        self._seen(region, index, stamp)

    def observe(self, region: Region, index: int, stamp: float, smoothing: float) -> None:
        """Take this frame's region; the velocity follows the box's edges.

        Along each axis the two edges moved alike unless something hid or uncovered part of
        the object (an occluder, a merge with another object, the frame's edge): then the edge
        that moved as predicted is the object's, the other moved with what hides it.
        """
        dt = stamp - self.last
        if dt > 0:
            x0, y0, x1, y1 = self.box
            if self.hits == 1:  # the first difference is the first estimate
                self.vx = (region.x0 + region.x1 - x0 - x1) / 2 / dt
                self.vy = (region.y0 + region.y1 - y0 - y1) / 2 / dt
            else:  # the longer the gap, the more the new difference counts
                weight = 1.0 - math.exp(-dt / smoothing) if smoothing > 0 else 1.0
                vx = _shift(region.x0 - x0, region.x1 - x1, self.vx * dt) / dt
                vy = _shift(region.y0 - y0, region.y1 - y1, self.vy * dt) / dt
                self.vx += weight * (vx - self.vx)
                self.vy += weight * (vy - self.vy)
        self._measure(region, index, stamp)

    def box_at(self, stamp: float) -> tuple[float, float, float, float]:
        """Constant-velocity prediction of the box at `stamp`."""
        dt = stamp - self.last
        cx, cy = self.cx + self.vx * dt, self.cy + self.vy * dt
        return (cx - self.w / 2, cy - self.h / 2, cx + self.w / 2, cy + self.h / 2)


#: Pairs (track, region index) and the indices of the regions no track took.
_Matches = tuple[list[tuple[_State, int]], list[int]]
#: Tracks x regions: intersection of predicted box and region box (px²), the predicted box's
#: area (a column) and whether the classes differ.
_Overlap = tuple[np.ndarray, np.ndarray, np.ndarray]


def _fit(low: float, high: float, start: float, end: float) -> tuple[float, float]:
    """The span [low, high] moved into [start, end] (cut to it where longer)."""
    if high - low >= end - start:
        return float(start), float(end)
    move = start - low if low < start else end - high if high > end else 0.0
    return low + move, high + move


def _color_distance(tracks: Sequence[_State], regions: Sequence[Region]) -> np.ndarray | float:
    """Tracks x regions: distance of their colours / sqrt(channels), 0 where either has none."""
    width = next((len(r.color) for r in regions if r.color is not None), 0)
    if not width:
        return 0.0
    missing = (math.nan,) * width
    found = np.array([r.color if r.color is not None and len(r.color) == width else missing
                      for r in regions])
    known = np.array([t.color if t.color is not None and len(t.color) == width else missing
                      for t in tracks])
    difference = known[:, None] - found[None]
    distance = np.sqrt(np.einsum('ijk,ijk->ij', difference, difference) / width)
    distance[np.isnan(distance)] = 0.0
    return distance


def _shift(near: float, far: float, expected: float) -> float:
    """The object's shift along one axis from its box's two edges' shifts (px)."""
    if abs(near - far) <= EDGES_AGREE:
        return (near + far) / 2
    return near if abs(near - expected) <= abs(far - expected) else far


class RegionTracker:
    """Tracks of one camera's regions; `update` once per frame, in stamp order."""

    def __init__(self, params: TrackerParams = TrackerParams(),
                 ids: Iterator[int] | None = None) -> None:
        """Start empty; `ids` (default 1, 2, ...) may be shared: ids unique across cameras."""
        self.params = params
        self._ids = ids if ids is not None else itertools.count(1)
        self._tracks: list[_State] = []
        self._stamp: float | None = None

    @property
    def params(self) -> TrackerParams:
        return self._params

    @params.setter
    def params(self, params: TrackerParams) -> None:
        """New settings apply from the next frame on; the tracks are kept."""
        if not isinstance(params, TrackerParams):
            raise ConfigurationError(f'expected TrackerParams, got {type(params).__name__}')
        self._params = params

    def reset(self) -> None:
        """Forget every track (deactivate, a jump back in time); ids keep counting."""
        self._tracks.clear()
        self._stamp = None

    def update(self, regions: Sequence[Region], stamp: float) -> list[Track]:
        """Add one frame's regions taken at `stamp` (s); the confirmed tracks, in id order.

        Tracks seen in this frame carry the index of their region (`within`; `region` too
        unless they share a merged region reported with another track's id); confirmed tracks
        not seen (within max_age) are returned too, with both None and their predicted box.
        """
        stamp = float(stamp)
        if self._stamp is not None and stamp < self._stamp:
            self.reset()
        self._stamp = stamp
        params = self._params
        self._tracks = [t for t in self._tracks if stamp - t.last <= params.max_age]
        for track in self._tracks:
            track.region = track.within = None
        matches, unmatched, overlap = self._associate(regions, stamp)
        merged = self._merged(matches, overlap)
        for track, index in matches:
            if index not in merged:
                track.observe(regions[index], index, stamp, params.velocity_smoothing)
        for index, (owner, sharing) in merged.items():
            for track in sharing:
                track.share(regions[index], index, stamp, track is owner)
        # an unconfirmed track missed once was likely noise (a fragment, a flicker)
        self._tracks = [t for t in self._tracks if t.confirmed or t.within is not None]
        for index in unmatched:
            if index not in merged:
                self._tracks.append(_State(next(self._ids), regions[index], index, stamp))
        out = []
        for track in self._tracks:
            track.confirmed = track.confirmed or track.hits >= params.min_hits
            if track.confirmed:
                out.append(self._report(track, stamp))
        return out

    def _merged(self, matches: list[tuple[_State, int]], overlap: _Overlap | None
                ) -> dict[int, tuple[_State, list[_State]]]:
        """Regions holding several tracks: index -> (the track reported with it, all of them).

        A confirmed track no region was given to is in the region of its class holding most
        of its predicted box (at least MERGED_INSIDE); a region so holding a track besides the
        one matched to it, or two tracks, is a merge. The matched track keeps the region's
        id; without one, the track most inside it does.
        """
        if overlap is None or len(matches) == len(self._tracks):
            return {}
        taken = {id(track) for track, _ in matches}
        free = [k for k, t in enumerate(self._tracks) if t.confirmed and id(t) not in taken]
        if not free:
            return {}
        inter, area, other = (a[free] for a in overlap)
        inside = np.where(other, 0.0, inter / np.maximum(area, 1e-9))
        best = inside.argmax(1)
        held: dict[int, list[tuple[float, _State]]] = {}
        for k, j, share in zip(free, best.tolist(), inside[np.arange(len(free)), best].tolist()):
            if share >= MERGED_INSIDE:
                held.setdefault(j, []).append((share, self._tracks[k]))
        owners = {index: track for track, index in matches}
        merged = {}
        for index, pairs in held.items():
            tracks = [track for _, track in pairs]
            owner = owners.get(index)
            if owner is not None:
                merged[index] = (owner, [owner, *tracks])
            elif len(tracks) > 1:
                merged[index] = (max(pairs, key=lambda pair: pair[0])[1], tracks)
        return merged

    def _associate(self, regions: Sequence[Region], stamp: float
                   ) -> tuple[list[tuple[_State, int]], list[int], _Overlap | None]:
        """Pairs (track, region index), regions no track took, tracks' overlap with regions.

        The overlap is None where there are no pairs to make.
        """
        tracks = self._tracks
        if not tracks or not regions:
            return [], list(range(len(regions))), None
        p = self._params
        state = np.array([(t.cx, t.cy, t.w, t.h, t.vx, t.vy, stamp - t.last, t.class_id,
                           0.0 if t.confirmed else p.tentative_cost, t.hits) for t in tracks])
        found = np.array([(r.x0, r.y0, r.x1, r.y1, r.class_id) for r in regions], np.float64)
        dt = state[:, 6]
        cx, cy = state[:, 0] + state[:, 4] * dt, state[:, 1] + state[:, 5] * dt
        half_w, half_h = state[:, 2:3] / 2, state[:, 3:4] / 2
        px0, px1 = cx[:, None] - half_w, cx[:, None] + half_w
        py0, py1 = cy[:, None] - half_h, cy[:, None] + half_h
        fx0, fy0, fx1, fy1 = found[:, 0], found[:, 1], found[:, 2], found[:, 3]
        inter = (np.maximum(np.minimum(px1, fx1) - np.maximum(px0, fx0), 0.0) *
                 np.maximum(np.minimum(py1, fy1) - np.maximum(py0, fy0), 0.0))
        area_t = (state[:, 2] * state[:, 3])[:, None]
        area_f = ((fx1 - fx0) * (fy1 - fy0))[None, :]
        iou = inter / np.maximum(area_t + area_f - inter, 1e-9)
        dist = np.hypot(cx[:, None] - (fx0 + fx1) / 2, cy[:, None] - (fy0 + fy1) / 2)
        speed = np.hypot(state[:, 4], state[:, 5])
        speed[state[:, 9] == 1] = p.max_speed / max(p.gate_motion, 1e-9)
        radius = (p.gate_size * np.sqrt(np.maximum(area_t, area_f)) +
                  (p.gate_motion * speed * dt + p.gate_pixels)[:, None])
        other = state[:, 7:8] != found[None, :, 4]
        overlap = (inter, area_t, other)
        valid = dist <= radius
        if math.isinf(p.class_change_cost):
            valid &= ~other
        if not valid.any():
            return [], list(range(len(regions))), overlap
        cost = dist / np.maximum(radius, 1e-9) + p.iou_weight * (1.0 - iou) + state[:, 8:9]
        if p.size_weight:
            cost += p.size_weight * np.abs(np.log(np.maximum(area_t, 1.0) /
                                                  np.maximum(area_f, 1.0)))
        if p.class_change_cost and not math.isinf(p.class_change_cost):
            cost += p.class_change_cost * other
        if p.color_weight:
            cost += p.color_weight * _color_distance(tracks, regions)
        return (*self._solve(cost, valid), overlap)

    def _solve(self, cost: np.ndarray, valid: np.ndarray) -> _Matches:
        """Least total cost, where leaving a track and a region unmatched costs max_cost.

        Without that option the solver would maximise the number of pairs first, taking two
        poor pairs (say each object's track on the other, after a crossing) over one good one.
        """
        n, m = cost.shape
        square = np.full((n + m, m + n), _NEVER)
        square[:n, :m] = np.where(valid, cost, _NEVER)
        half = self._params.max_cost / 2
        tracks, regions = np.arange(n), np.arange(m)
        square[tracks, m + tracks] = half  # track i left unmatched
        square[n + regions, regions] = half  # region j left unmatched
        square[n:, m:] = 0.0
        rows, cols = linear_sum_assignment(square)
        pairs = (rows < n) & (cols < m)
        rows, cols = rows[pairs], cols[pairs]
        taken = valid[rows, cols] & (cost[rows, cols] < self._params.max_cost)
        matched = set(cols[taken].tolist())
        states = self._tracks
        return ([(states[r], c) for r, c in zip(rows[taken].tolist(), cols[taken].tolist())],
                [j for j in range(m) if j not in matched])

    @staticmethod
    def _report(track: _State, stamp: float) -> Track:
        box = track.box if track.within is not None else track.box_at(stamp)
        return Track(track.track_id, track.class_id, box, (track.vx, track.vy),
                     stamp - track.first, track.hits, stamp - track.last, track.region,
                     track.score, track.within, tuple(track.trail))


#: Seconds of motion the overlay's arrow shows: at 120 Hz, the next ~12 frames' path.
ARROW_SECONDS = 0.1


def draw_tracks(image: np.ndarray, tracks: Sequence[Track]) -> None:
    """Draw each seen track's id, trail and heading (ARROW_SECONDS ahead) onto `image`.

    In place, on the overlay the node is about to publish (RGB, input pixels): a person
    watching sees which id an object carries and how fast it moves, in a merged region too
    (each track's predicted box in it).
    """
    import cv2

    for track in tracks:
        if track.within is None:
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in track.box)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        vx, vy = track.velocity
        tip = (int(round(cx + vx * ARROW_SECONDS)), int(round(cy + vy * ARROW_SECONDS)))
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 1)
        if len(track.trail) > 1:
            path = np.round(np.array(track.trail)).astype(np.int32)
            cv2.polylines(image, [path], False, (255, 0, 255), 1)
        cv2.arrowedLine(image, (cx, cy), tip, (255, 255, 0), 2, tipLength=0.3)
        label = f'#{track.track_id}'
        origin = (x0, max(12, y0 - 3))
        cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3)
        cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
