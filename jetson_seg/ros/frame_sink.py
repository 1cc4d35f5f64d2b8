"""The segmentation node's FrameSink: what the scheduler's two stages do with camera frames.

Stage 1 asks the frame's camera what is listened to and decodes the frame within the node's
size limit; stage 2 sends the results through that camera's CameraOutputs: masks and
detections first, then objects in 3D, then the pictures for people. Rejected and failed
frames are logged (throttled); the last failure is kept for diagnostics. Parameters are read
per frame, so runtime changes apply to the next one.
"""

from __future__ import annotations

from typing import Callable

from jetson_seg.ros import image_input
from jetson_seg.ros.camera_outputs import CameraOutputs
from jetson_seg.ros.health import HealthTracker
from jetson_seg.ros.messages import class_labels
from jetson_seg.vision.image_conversion import DecodedImage, ImageRejected
from jetson_seg.vision.pipeline import FrameResult, Wanted
from jetson_seg.vision.scheduler import PendingFrame


class NodeFrameSink:
    """FrameSink over the node's cameras; `param` reads one of the node's parameters."""

    def __init__(self, outputs: dict[str, CameraOutputs], class_names: tuple[str, ...],
                 param: Callable[[str], object], log, health: HealthTracker) -> None:
        self._outputs = outputs
        self._class_names = class_names
        self._param = param
        self._log = log
        self._health = health

    def check(self, message) -> None:  # the scheduler's precheck, run in the callback
        image_input.check(message, self._param('max_image_pixels'))

    def wanted(self, camera: str) -> Wanted:
        return self._outputs[camera].wanted()

    def decode(self, message) -> DecodedImage:
        return image_input.decode(message, self._param('max_image_pixels'))

    def _labels(self) -> tuple[str, ...]:
        return class_labels(self._class_names, self._param('class_id_format') == 'name')

    def publish(self, frame: PendingFrame, result: FrameResult) -> None:
        self._outputs[frame.camera].publish(frame.message.header, result, self._labels())

    def publish_views(self, frame: PendingFrame, result: FrameResult) -> None:
        """Objects in 3D (what a robot acts on) before the colour mask and overlay."""
        outputs = self._outputs[frame.camera]
        outputs.publish_objects(frame.message.header, result, self._labels())
        outputs.publish_views(frame.message.header, result, self._param('jpeg_quality'))

    def rejected(self, frame: PendingFrame, error: ImageRejected) -> None:
        self._log.warning(f'rejected image (frame_id={frame.message.header.frame_id!r}): '
                          f'{error}', throttle_duration_sec=2.0)

    def failed(self, error: Exception) -> None:
        self._health.last_failure = repr(error)
        self._log.error(f'frame failed: {error!r}', throttle_duration_sec=2.0)
