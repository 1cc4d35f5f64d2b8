"""One camera's objects in 3D: its depth input, paired with frames by stamp, and the 3D outputs.

A registered depth image (`depth`, REP 117, or `depth/compressedDepth` with depth.transport
compressedDepth, decoded only once paired) and the colour frame it belongs to share a header
stamp, and either may come first. Each waits in a StampMatcher until its partner comes; a frame
without a depth image keeps its 2D outputs and gets no 3D ones. The pair is turned into
`segmentation/detections_3d` and `segmentation/points` by vision/depth.py, in the thread that
completed it: the publishing stage, after every camera's mask and detections, when the depth
image came first (the usual case), else the depth subscription's callback. The intrinsics are
those of the latest `depth/camera_info`, its distortion included (a calibrated camera's do not
change). The objects are located once for both outputs: the cloud's points carry their
objects' ids (the 3D detections' track ids), and with depth.point_filter band it is made of
what locating them kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import Header

from jetson_seg.ros import image_input
from jetson_seg.ros.health import DepthCounts
from jetson_seg.ros.interface import (COMPRESSED_DEPTH, DEPTH, DEPTH_CAMERA_INFO, DEPTH_OUTPUTS,
                                      QOS_OVERRIDES, qos)
from jetson_seg.ros.messages import detections_3d_msg, point_cloud_msg
from jetson_seg.ros.node_parameters import DEPTH_PARAMS, depth_params
from jetson_seg.ros.serialized import ReceivedImage
from jetson_seg.ros.stamp_matcher import StampMatcher
from jetson_seg.vision.camera_model import CameraModel, read_camera_info
from jetson_seg.vision.depth import (NO_ID, check_pairing, labelled_points, locate_objects,
                                     object_points)
from jetson_seg.vision.image_conversion import ImageRejected
from jetson_seg.vision.pipeline import FrameResult
from jetson_seg.vision.postprocess import Region


@dataclass(frozen=True)
class FrameObjects:
    """What a frame's 3D outputs are made from, kept until its depth image comes."""

    header: Header
    mask: np.ndarray  # class ids, a copy: the pipeline reuses its buffers for the next frame
    image_size: tuple[int, int]  # (width, height) of the colour image: the regions' pixels
    regions: list[Region]  # located for either output (the cloud's ids are the objects')
    ids: list[str]  # each region's track id, as on its 2D detection
    labels: tuple[str, ...]  # class_id strings by class index
    boxes: bool  # segmentation/detections_3d is listened to
    points: bool  # segmentation/points is listened to


class DepthOutputs:
    """The depth input and 3D outputs of one camera (CameraOutputs owns one).

    `param` reads one of the node's parameters (depth.* are read per pair, so runtime changes
    apply to the next); `counts` gathers what became of the depth images, for diagnostics.
    """

    def __init__(self, node: LifecycleNode, camera: str, output_qos: QoSProfile,
                 param: Callable[[str], object], counts: DepthCounts) -> None:
        self.camera = camera
        self._node = node
        self._param = param
        self._counts = counts
        self._camera: CameraModel | None = None
        self._camera_problem = 'no depth/camera_info received yet'
        self._pairs: StampMatcher[ReceivedImage | CompressedImage, FrameObjects] = StampMatcher(
            self._on_pair, int(param('depth.queue_size')))
        self._pubs = {key: node.create_publisher(topic.type, topic.under(camera),
                                                 copy.copy(output_qos),
                                                 qos_overriding_options=QOS_OVERRIDES)
                      for key, topic in DEPTH_OUTPUTS.items()}

    def listened(self) -> set[str]:
        """The 3D outputs someone subscribes to."""
        return {key for key, pub in self._pubs.items() if pub.get_subscription_count() > 0}

    def subscribe(self) -> list:
        """The optional depth and depth/camera_info inputs (made at activate)."""
        profile = qos(self._param('depth.input_reliability'), self._param('depth.input_depth'))
        if self._param('depth.transport') == 'compressedDepth':
            depth = self._node.create_subscription(
                COMPRESSED_DEPTH.type, COMPRESSED_DEPTH.under(self.camera),
                self._on_depth_message, profile, qos_overriding_options=QOS_OVERRIDES)
        else:
            depth = self._node.create_subscription(
                DEPTH.type, DEPTH.under(self.camera), self._on_depth, profile,
                qos_overriding_options=QOS_OVERRIDES, raw=True)
        return [depth,
                self._node.create_subscription(
                    DEPTH_CAMERA_INFO.type, DEPTH_CAMERA_INFO.under(self.camera),
                    self._on_camera_info, copy.copy(profile),
                    qos_overriding_options=QOS_OVERRIDES)]

    def destroy(self) -> None:
        for pub in self._pubs.values():
            self._node.destroy_publisher(pub)
        self._pubs = {}

    def add_frame(self, header: Header, result: FrameResult, ids: list[str],
                  labels: tuple[str, ...], listened: set[str]) -> None:
        """A published frame's products: its 3D outputs follow once its depth image is here."""
        wanted = listened & set(DEPTH_OUTPUTS)
        if not wanted or result.class_ids is None or result.regions is None:
            return
        self._pairs.add_b(FrameObjects(header, result.class_ids.copy(), result.image_size,
                                       list(result.regions), list(ids), labels,
                                       'detections_3d' in wanted, 'points' in wanted))

    def _on_depth(self, data: bytes) -> None:
        """A raw depth image, read in place (no Python Image, no copy)."""
        self._on_depth_message(image_input.readable(data))

    def _on_depth_message(self, message) -> None:
        """A depth image, checked in the callback: a malformed one never waits for a frame."""
        try:
            image_input.check_depth_message(message, self._param('max_image_pixels'))
        except ImageRejected as exc:
            self._rejected(exc)
            return
        self._pairs.add_a(message)

    def _on_camera_info(self, info: CameraInfo) -> None:
        camera, problem = read_camera_info(info)
        if camera is not None and not (camera.width and camera.height):
            camera, problem = None, 'it gives no image size (width and height 0)'
        self._camera = camera
        if camera is None:
            self._camera_problem = f'depth/camera_info refused: {problem}'

    def _rejected(self, error: ImageRejected) -> None:
        self._counts.on_rejected(error.reason)
        self._node.get_logger().warning(f'rejected depth image ({self.camera or "/"}): {error}',
                                        throttle_duration_sec=2.0)

    def _on_pair(self, message: ReceivedImage | CompressedImage, frame: FrameObjects) -> None:
        """Publish a pair's 3D outputs; whatever goes wrong is counted, never raised.

        It may run in a subscription callback, where an exception would stop the executor.
        """
        try:
            self._publish(message, frame)
        except ImageRejected as exc:
            self._rejected(exc)
        except Exception as exc:  # the node and its 2D outputs go on
            self._counts.on_rejected('processing_error')
            self._node.get_logger().error(f'depth pairing failed: {exc!r}',
                                          throttle_duration_sec=2.0)

    def _publish(self, message: ReceivedImage | CompressedImage, frame: FrameObjects) -> None:
        """Locate the frame's objects in its depth image and send what is listened to."""
        camera = self._camera
        if camera is None:
            raise ImageRejected('no_camera_info', self._camera_problem)
        depth = image_input.decode_depth_message(message, self._param('max_image_pixels'))
        check_pairing(depth.shape, frame.image_size)
        check_pairing((camera.height, camera.width), frame.image_size)
        values = {spec.name: self._param(spec.name) for spec in DEPTH_PARAMS}
        located = locate_objects(frame.mask, frame.regions, frame.image_size, depth, camera,
                                 depth_params(values))
        if frame.boxes:
            self._pubs['detections_3d'].publish(
                detections_3d_msg(frame.header, located, frame.labels, frame.ids))
        if frame.points:
            ids = [int(track) if track else NO_ID for track in frame.ids]
            stride = values['depth.point_stride']
            if values['depth.point_filter'] == 'band':
                points = object_points(located, ids, depth, camera, stride)
            else:
                points = labelled_points(frame.mask, depth, camera, stride, located, ids)
            self._pubs['points'].publish(point_cloud_msg(frame.header, points))
        self._counts.on_used()
