"""Newest frame per camera, two overlapping stages, and every received frame accounted for.

A camera may outrun the network. Each camera keeps only its newest frame (one replaced before it
was processed is dropped and counted), so latency stays bounded and no queue grows. Stage 1
decodes and infers the newest frame of every camera as one batch while stage 2 postprocesses and
publishes the previous batch. No rclpy: the node hands in a `FrameSink`, tests drive it directly.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from jetson_seg.vision.frame_stats import FrameStats
from jetson_seg.vision.image_conversion import DecodedImage, ImageRejected
from jetson_seg.vision.pipeline import FrameResult, Inferred, SegmentationPipeline, Wanted


@dataclass(frozen=True)
class PendingFrame:
    """A received message waiting for stage 1; `received_at` is time.monotonic() at receipt."""

    camera: str
    message: Any
    received_at: float


@dataclass(frozen=True)
class BatchItem:
    """One frame of a batch after decoding, with the outputs someone listens to."""

    frame: PendingFrame
    image: DecodedImage
    wanted: Wanted


@dataclass(frozen=True)
class InferredBatch:
    """Stage 1's product, handed to stage 2 (decode time is per frame)."""

    items: list[BatchItem]
    inferred: Inferred
    decode_ms: float


class FrameSink(Protocol):
    """What the scheduler needs from its owner (the ROS node, or a test)."""

    def wanted(self, camera: str) -> Wanted:
        """Outputs of `camera` that have a listener; nothing wanted -> not even decoded."""

    def decode(self, message: Any) -> DecodedImage:
        """Message -> image; raises ImageRejected for a malformed one."""

    def publish(self, frame: PendingFrame, result: FrameResult) -> None:
        """Send one frame's mask and detections (what a robot acts on): sent first."""

    def publish_views(self, frame: PendingFrame, result: FrameResult) -> None:
        """Send one frame's colour mask and overlay, once every frame's mask is out."""

    def rejected(self, frame: PendingFrame, error: ImageRejected) -> None:
        """A malformed frame was counted (the node logs it, throttled)."""

    def failed(self, error: Exception) -> None:
        """A stage raised; the frames involved were counted as processing errors."""


class FrameScheduler:
    """Owns the per-camera newest-frame slot, the two stage threads and the frame accounting.

    Every received frame ends in exactly one FrameStats count: answered, dropped, rejected or
    unwanted (see FrameStats). `precheck`, when given, runs in `submit` (the subscription
    callback): a message it rejects is counted there and never displaces a pending valid frame.
    """

    def __init__(self, pipeline: SegmentationPipeline, sink: FrameSink,
                 stats: FrameStats | None = None, precheck=None) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.stats = stats if stats is not None else FrameStats()
        self._precheck = precheck
        self._cond = threading.Condition()
        self._pending: dict[str, PendingFrame] = {}
        self._running = False
        self._workers: list[threading.Thread] = []
        self._handoff: queue.Queue[InferredBatch] = queue.Queue(maxsize=1)

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Start both stages (idempotent)."""
        if self._running:
            return
        self._running = True
        self._workers = [threading.Thread(target=self._infer_loop, name='infer', daemon=True),
                         threading.Thread(target=self._publish_loop, name='publish',
                                          daemon=True)]
        for worker in self._workers:
            worker.start()

    def submit(self, camera: str, message: Any, stamp_age_s: float | None = None) -> None:
        """Take a camera's newest message; a well-formed one replaces (drops) the pending one.

        `stamp_age_s` (receipt time minus header stamp) goes to the statistics.
        """
        self.stats.on_received(stamp_age_s)
        frame = PendingFrame(camera, message, time.monotonic())
        if self._precheck is not None:
            try:
                self._precheck(message)
            except ImageRejected as exc:
                self._reject(frame, exc)
                return
        with self._cond:
            if not self._running:  # between deactivate and activate nothing is processed
                self.stats.on_dropped()
                return
            if camera in self._pending:
                self.stats.on_dropped()
            self._pending[camera] = frame
            self._cond.notify()

    def stop(self) -> None:
        """Stop both stages and wait for them (idempotent); pending frames count as dropped."""
        with self._cond:
            self._running = False
            for _ in self._pending:
                self.stats.on_dropped()
            self._pending = {}
            self._cond.notify_all()
        for worker in self._workers:  # no timeout: a thread left running would use a closed
            worker.join()             # engine or race a new start (loops poll every 0.1 s)
        self._workers = []
        while not self._handoff.empty():
            batch = self._handoff.get_nowait()
            for _ in batch.items:
                self.stats.on_dropped()

    def _reject(self, frame: PendingFrame, error: ImageRejected) -> None:
        self.stats.on_rejected(error.reason)
        self.sink.rejected(frame, error)

    def _infer_loop(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._pending:
                    self._cond.wait()
                if not self._running:
                    return
                frames, self._pending = list(self._pending.values()), {}
            batch = self._infer(frames)
            while batch is not None:  # wait for stage 2, stay stoppable
                if not self._running:
                    for _ in batch.items:
                        self.stats.on_dropped()
                    break
                try:
                    self._handoff.put(batch, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _failed(self, error: Exception, frames: int) -> None:
        """Frames lost to an unexpected error: counted once each, and the worker goes on."""
        self.stats.on_rejected('processing_error', frames)
        self.sink.failed(error)

    def _infer(self, frames: list[PendingFrame]) -> InferredBatch | None:
        """Decode the newest frame of each camera and infer them as one batch.

        Each frame ends in one count: unwanted, rejected, processing_error, or in the batch.
        """
        t0 = time.perf_counter()
        items: list[BatchItem] = []
        for frame in frames:
            try:
                wanted = self.sink.wanted(frame.camera)
                if not wanted.anything:
                    self.stats.on_unwanted()
                    continue
                items.append(BatchItem(frame, self.sink.decode(frame.message), wanted))
            except ImageRejected as exc:
                self._reject(frame, exc)
            except Exception as exc:  # the worker must outlive any one bad frame
                self._failed(exc, 1)
        if not items:
            return None
        decode_ms = (time.perf_counter() - t0) * 1e3 / len(items)
        try:
            inferred = self.pipeline.infer_batch([i.image for i in items])
        except Exception as exc:
            self._failed(exc, len(items))
            return None
        return InferredBatch(items, inferred, decode_ms)

    def _publish_loop(self) -> None:
        while self._running:
            try:
                batch = self._handoff.get(timeout=0.1)
            except queue.Empty:
                continue
            self._finish(batch)

    def _finish(self, batch: InferredBatch) -> None:
        """Postprocess and publish: the whole batch's masks and detections, then viewer images.

        A frame that fails is counted once, the others go on.
        """
        try:
            results = self.pipeline.finish_batch(batch.inferred,
                                                 [i.wanted for i in batch.items])
        except Exception as exc:
            self._failed(exc, len(batch.items))
            return
        sent = [self._send(self.sink.publish, item, result, 0.0)
                for item, result in zip(batch.items, results)]
        for item, result, publish_ms in zip(batch.items, results, sent):
            if publish_ms is None:
                continue
            try:
                self.pipeline.add_views(result, item.image, item.wanted)
            except Exception as exc:
                self._failed(exc, 1)
                continue
            publish_ms = self._send(self.sink.publish_views, item, result, publish_ms)
            if publish_ms is None:
                continue
            stages = {'decode': batch.decode_ms, **result.timings_ms, 'publish': publish_ms}
            self.stats.on_answered((time.monotonic() - item.frame.received_at) * 1e3, stages)

    def _send(self, publish, item: BatchItem, result: FrameResult,
              publish_ms: float) -> float | None:
        """Publish one frame's products; returns `publish_ms` plus the time it took.

        None if `publish` raised: the frame is then counted as a processing error.
        """
        t0 = time.perf_counter()
        try:
            publish(item.frame, result)
        except Exception as exc:
            self._failed(exc, 1)
            return None
        return publish_ms + (time.perf_counter() - t0) * 1e3
