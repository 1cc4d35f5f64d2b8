"""FrameScheduler without DDS: newest frame wins, every frame counted once, clean shutdown.

The scheduler runs the real pipeline on the real default model (LiteRT); a gate in front of the
engine holds a batch in stage 1 so that what arrives meanwhile is deterministic.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from image_msgs import image_from_rgb, stamped

from jetson_seg.model_loader import open_model
from jetson_seg.vision.frame_stats import FrameStats
from jetson_seg.vision.image_conversion import check_image, decode_image
from jetson_seg.vision.pipeline import PipelineConfig, SegmentationPipeline, Wanted
from jetson_seg.vision.scheduler import FrameScheduler
from jetson_seg.training.scenes import scene_stream


class GatedPipeline:
    """The real pipeline, with stage 1 held at a gate until the test opens it."""

    def __init__(self, pipeline: SegmentationPipeline) -> None:
        self._pipeline = pipeline
        self.entered = threading.Event()
        self.gate = threading.Event()

    def infer_batch(self, images):
        self.entered.set()
        assert self.gate.wait(30.0), 'the test never opened the gate'
        return self._pipeline.infer_batch(images)

    def finish_batch(self, inferred, wanted):
        return self._pipeline.finish_batch(inferred, wanted)

    def add_views(self, result, image, wanted):
        self._pipeline.add_views(result, image, wanted)


class RecordingSink:
    """Collects what the scheduler publishes, rejects and fails, like the node would log it."""

    def __init__(self, idle_cameras: tuple[str, ...] = ()) -> None:
        self.idle = idle_cameras
        self.published: list[tuple[str, int]] = []  # (camera, stamp sec)
        self.events: list[tuple[str, str]] = []  # (what, camera) in publishing order
        self.masks: list[np.ndarray] = []
        self.rejections: list[str] = []
        self.failures: list[Exception] = []

    def wanted(self, camera: str) -> Wanted:
        if camera in self.idle:
            return Wanted(mask=False, color_mask=False, overlay=False, detections=False)
        return Wanted(mask=True, color_mask=True, overlay=False, detections=True)

    def decode(self, message):
        return decode_image(message)

    def publish(self, frame, result) -> None:
        assert result.color_mask is None, 'viewer images must come after the mask'
        self.published.append((frame.camera, frame.message.header.stamp.sec))
        self.events.append(('mask', frame.camera))
        self.masks.append(result.mask)

    def publish_views(self, frame, result) -> None:
        assert result.color_mask is not None and result.color_mask.shape[:2] == \
            result.mask.shape
        self.events.append(('views', frame.camera))

    def rejected(self, frame, error) -> None:
        self.rejections.append(error.reason)

    def failed(self, error: Exception) -> None:
        self.failures.append(error)


@pytest.fixture(scope='module')
def pipeline():
    engine, info = open_model('', 'litert', threads=1)
    yield SegmentationPipeline(engine, info, PipelineConfig())
    engine.close()


@pytest.fixture(scope='module')
def frame_image():
    return next(scene_stream(5)).image


def _frame(image: np.ndarray, index: int):
    return stamped(image_from_rgb(image, 'rgb8'), index)


def _malformed(image: np.ndarray, index: int):
    """Valid-looking frames with one field wrong each: what a broken driver sends."""
    kinds = ['truncated', 'encoding', 'zero', 'step', 'huge']
    msg = _frame(image, index)
    kind = kinds[index % len(kinds)]
    if kind == 'truncated':
        msg.data = bytes(msg.data)[:1000]
    elif kind == 'encoding':
        msg.encoding = 'yuv422_weird'
    elif kind == 'zero':
        msg.width = 0
    elif kind == 'step':
        msg.step = 10
    else:
        msg.width, msg.height = 100_000, 100_000
    return msg


def _wait(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _balanced(stats: FrameStats) -> bool:
    return stats.received == (stats.answered + stats.dropped + sum(stats.rejected.values())
                              + stats.unwanted)


def _while_engine_busy(pipeline, frame_image, arrivals: list[tuple[str, int]],
                       answers: int) -> tuple[FrameScheduler, RecordingSink]:
    """Frame 0 of the first camera is held in the engine while `arrivals` come in."""
    gated, sink = GatedPipeline(pipeline), RecordingSink()
    scheduler = FrameScheduler(gated, sink)
    scheduler.start()
    try:
        scheduler.submit(arrivals[0][0], _frame(frame_image, 0))
        assert gated.entered.wait(10.0)  # frame 0 is in the engine
        for camera, index in arrivals:
            scheduler.submit(camera, _frame(frame_image, index))
        gated.gate.set()
        assert _wait(lambda: scheduler.stats.answered == answers)
    finally:
        scheduler.stop()
    return scheduler, sink


def test_newest_frame_wins_while_the_engine_is_busy(pipeline, frame_image):
    # frames 1..4 are replaced by the next before the engine is free
    scheduler, sink = _while_engine_busy(pipeline, frame_image,
                                         [('cam', i) for i in range(1, 6)], answers=2)
    assert [sec for _, sec in sink.published] == [1000, 1005]
    assert scheduler.stats.dropped == 4 and _balanced(scheduler.stats)
    np.testing.assert_array_equal(sink.masks[0], sink.masks[1])  # same image, same mask
    assert sink.masks[0].shape == frame_image.shape[:2]


def test_each_camera_keeps_its_own_newest_frame(pipeline, frame_image):
    arrivals = list(zip(['front', 'rear', 'front', 'rear'], range(1, 5)))
    scheduler, sink = _while_engine_busy(pipeline, frame_image, arrivals, answers=3)
    assert sorted(sink.published) == [('front', 1000), ('front', 1003), ('rear', 1004)]
    assert scheduler.stats.dropped == 2 and _balanced(scheduler.stats)
    # frames 3 and 4 form one batch: both masks go out before either camera's viewer images
    assert [what for what, _ in sink.events] == ['mask', 'views', 'mask', 'mask', 'views',
                                                 'views']


def test_every_frame_ends_in_exactly_one_count(pipeline, frame_image):
    sink = RecordingSink(idle_cameras=('idle',))
    scheduler = FrameScheduler(pipeline, sink)
    scheduler.start()
    try:
        for index in range(30):
            camera = ('cam', 'idle', 'cam')[index % 3]
            scheduler.submit(camera, _frame(frame_image, index) if index % 5 else
                             _malformed(frame_image, index))
            time.sleep(0.002)
        assert _wait(lambda: _balanced(scheduler.stats))
    finally:
        scheduler.stop()
    stats = scheduler.stats
    assert stats.received == 30 and _balanced(stats)
    assert stats.unwanted > 0 and stats.answered > 0
    assert sum(stats.rejected.values()) == len(sink.rejections) > 0
    assert not sink.failures


def test_malformed_frames_never_displace_a_pending_valid_frame(pipeline, frame_image):
    """Checked in the callback (`precheck`), a malformed message is counted, not queued."""
    gated, sink = GatedPipeline(pipeline), RecordingSink()
    scheduler = FrameScheduler(gated, sink, precheck=check_image)
    scheduler.start()
    try:
        for burst in range(3):
            first = burst * 100
            scheduler.submit('cam', _frame(frame_image, first))
            assert gated.entered.wait(10.0)
            scheduler.submit('cam', _frame(frame_image, first + 1))  # pending behind the engine
            for index in range(10):
                scheduler.submit('cam', _malformed(frame_image, first + 2 + index))
            gated.gate.set()
            assert _wait(lambda: scheduler.stats.answered == 2 * (burst + 1))
            gated.gate.clear()
            gated.entered.clear()
    finally:
        gated.gate.set()
        scheduler.stop()
    assert [sec for _, sec in sink.published] == [1000, 1001, 1100, 1101, 1200, 1201]
    assert sum(scheduler.stats.rejected.values()) == 30 and scheduler.stats.dropped == 0
    assert set(sink.rejections) == {'truncated', 'unsupported_encoding', 'zero_size',
                                    'bad_step', 'too_large'}


def test_stop_counts_pending_frames_joins_threads_and_can_start_again(pipeline, frame_image):
    gated, sink = GatedPipeline(pipeline), RecordingSink()
    scheduler = FrameScheduler(gated, sink)
    before = threading.active_count()
    scheduler.start()
    scheduler.submit('cam', _frame(frame_image, 0))
    assert gated.entered.wait(10.0)
    scheduler.submit('cam', _frame(frame_image, 1))  # pending when stop comes
    threading.Timer(0.3, gated.gate.set).start()  # the engine call in flight returns later
    scheduler.stop()
    scheduler.stop()  # idempotent
    assert threading.active_count() <= before + 1  # (+ the timer thread, if still alive)
    assert not scheduler.running and sink.published == []
    assert scheduler.stats.dropped == 2 and _balanced(scheduler.stats)
    scheduler.submit('cam', _frame(frame_image, 2))  # stopped: counted, not processed
    assert scheduler.stats.dropped == 3 and _balanced(scheduler.stats)

    scheduler.start()
    try:
        scheduler.submit('cam', _frame(frame_image, 3))
        assert _wait(lambda: scheduler.stats.answered == 1)
    finally:
        scheduler.stop()
    assert sink.published == [('cam', 1003)] and _balanced(scheduler.stats)


class FailingOnce:
    """The real pipeline, whose first `stage` call raises (a bug, not a bad frame)."""

    def __init__(self, pipeline: SegmentationPipeline, stage: str) -> None:
        self._pipeline, self._stage, self.raised = pipeline, stage, False

    def _maybe_raise(self, stage: str) -> None:
        if stage == self._stage and not self.raised:
            self.raised = True
            raise RuntimeError(f'{stage} broke')

    def infer_batch(self, images):
        self._maybe_raise('infer')
        return self._pipeline.infer_batch(images)

    def finish_batch(self, inferred, wanted):
        self._maybe_raise('finish')
        return self._pipeline.finish_batch(inferred, wanted)

    def add_views(self, result, image, wanted):
        self._maybe_raise('views')
        self._pipeline.add_views(result, image, wanted)


@pytest.mark.parametrize('stage', ['infer', 'finish', 'views'])
def test_a_failing_stage_counts_its_frames_once_and_the_worker_goes_on(pipeline, frame_image,
                                                                       stage):
    sink = RecordingSink(idle_cameras=('idle',))
    failing = FailingOnce(pipeline, stage)
    scheduler = FrameScheduler(failing, sink)
    scheduler.start()
    try:
        scheduler.submit('idle', _frame(frame_image, 0))  # unwanted: counted as such only
        scheduler.submit('cam', _frame(frame_image, 1))   # lost to the failure
        assert _wait(lambda: failing.raised and _balanced(scheduler.stats))
        scheduler.submit('cam', _frame(frame_image, 2))   # the worker still serves
        assert _wait(lambda: scheduler.stats.answered == 1)
    finally:
        scheduler.stop()
    stats = scheduler.stats
    assert stats.rejected['processing_error'] == 1 and stats.unwanted == 1
    assert _balanced(stats) and len(sink.failures) == 1
    # a frame whose viewer images failed had its mask out already, and is counted as failed
    assert sink.published == ([('cam', 1001)] if stage == 'views' else []) + [('cam', 1002)]
