"""One camera's outputs under `<camera>/segmentation/`: publishers, what is listened to, sending.

The node makes one `CameraOutputs` per camera at configure and hands it each frame's results;
it decides from the subscriber counts what the pipeline computes, sends what was computed with
the frame's header, gives detections their track ids, sends the tracks (with viewing directions
once a camera_info came) and pairs the mask with its camera_info. Objects in 3D (the depth
input and its outputs) are its DepthOutputs' (depth_outputs.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from jetson_seg.ros.depth_outputs import DepthOutputs
from jetson_seg.ros.interface import (CAMERA_INFO, CAMERA_INFO_QOS, DEPTH_OUTPUTS, LABEL_INFO,
                                      LABEL_INFO_QOS, PUBLISHED, QOS_OVERRIDES)
from jetson_seg.ros.messages import (compressed_msg, detections_msg, label_info_msg,
                                     mask_camera_info, tracks_msg)
from jetson_seg.ros.serialized import serialized_image
from jetson_seg.ros.stamp_matcher import StampMatcher
from jetson_seg.vision.camera_model import CameraModel, read_camera_info
from jetson_seg.vision.pipeline import FrameResult, Wanted
from jetson_seg.vision.rate_cap import RateCap
from jetson_seg.vision.tracker import RegionTracker, Track, TrackerParams, draw_tracks

VIEWS = {'color_mask', 'overlay', 'overlay_compressed'}  # pictures for people: viewer_max_rate
TRACKED = {'detections', 'tracks'}  # outputs the tracker runs for (on the frame's regions)
REGIONS = TRACKED | set(DEPTH_OUTPUTS)  # outputs made from the frame's regions (cloud: ids)


@dataclass(frozen=True)
class MaskGeometry:
    """A published mask's header and (width, height): what its camera_info is scaled to."""

    header: Header
    size: tuple[int, int]


class CameraOutputs:
    """Publishers and per-frame sending of one camera; the node's FrameSink delegates here.

    `viewer_cap` is shared by the cameras (keyed by camera), as is the track id counter inside
    `tracker`, so ids stay unique across cameras; `depth` is this camera's 3D side.
    """

    def __init__(self, node: LifecycleNode, camera: str, output_qos: QoSProfile,
                 viewer_cap: RateCap, tracker: RegionTracker, depth: DepthOutputs) -> None:
        self.camera = camera
        self._node = node
        self._viewer_cap = viewer_cap
        self._tracker = tracker
        self._depth = depth
        self._tracks: list[Track] = []  # the last frame's, drawn on its overlay
        self._ids: list[str] = []  # the last frame's track id of each region
        self._listening: set[str] = set()  # as `wanted` last found it
        self._camera: CameraModel | None = None  # from the latest usable camera_info
        self._camera_problem = ''  # why the latest camera_info gave no model
        self._camera_infos: StampMatcher[CameraInfo, MaskGeometry] = \
            StampMatcher(self._publish_camera_info)
        # Each publisher gets its own QoSProfile: rclpy applies qos_overrides to it in place.
        self._pubs = {key: node.create_publisher(topic.type, topic.under(camera),
                                                 copy.copy(output_qos),
                                                 qos_overriding_options=QOS_OVERRIDES)
                      for key, topic in PUBLISHED.items()}
        self._pubs['label_info'] = node.create_publisher(
            LABEL_INFO.type, LABEL_INFO.under(camera), copy.copy(LABEL_INFO_QOS),
            qos_overriding_options=QOS_OVERRIDES)

    def publish_label_info(self, header: Header, class_names: tuple[str, ...]) -> None:
        """Latched: late joiners get the class table of the model configured."""
        self._pubs['label_info'].publish(label_info_msg(header, class_names))

    def subscribe_optional_inputs(self) -> list:
        """camera_info, paired with masks by stamp, and the depth inputs (made at activate)."""
        return [self._node.create_subscription(
            CAMERA_INFO.type, CAMERA_INFO.under(self.camera), self._on_camera_info,
            copy.copy(CAMERA_INFO_QOS), qos_overriding_options=QOS_OVERRIDES),
            *self._depth.subscribe()]

    def _on_camera_info(self, info: CameraInfo) -> None:
        """Pair it with its mask; keep the camera's model for the tracks' viewing directions."""
        self._camera_infos.add_a(info)
        self._camera, problem = read_camera_info(info)
        if problem and problem != self._camera_problem:  # say why once per change
            self._node.get_logger().warning(f'{self.camera}: {problem}; tracks are published '
                                            f'without viewing directions')
        self._camera_problem = problem

    def retune(self, params: TrackerParams) -> None:
        """New tracking settings apply from the next frame; tracks are kept."""
        self._tracker.params = params

    def reset_tracks(self) -> None:
        """Forget the tracks (deactivate): a reactivated camera may show anything."""
        self._tracker.reset()

    def destroy(self) -> None:
        for pub in self._pubs.values():
            self._node.destroy_publisher(pub)
        self._pubs = {}
        self._depth.destroy()

    def wanted(self) -> Wanted:
        """What to compute, from the subscriber counts; `publish` reuses this reading."""
        listened = {key for key, pub in self._pubs.items() if pub.get_subscription_count() > 0}
        listened |= self._depth.listened()
        self._listening = listened
        viewers = bool(listened & VIEWS) and self._viewer_cap.allow(self.camera)
        # the point cloud is the mask's pixels
        return Wanted(mask=bool(listened & {'mask', 'mask_compressed', 'points'}),
                      color_mask=viewers and 'color_mask' in listened,
                      overlay=viewers and bool(listened & {'overlay', 'overlay_compressed'}),
                      detections=bool(listened & REGIONS))

    def publish(self, header: Header, result: FrameResult, labels: tuple[str, ...]) -> None:
        """The mask and detections (what a robot acts on); `labels` name the class ids."""
        listened = self._listening
        if result.mask is not None and 'mask' in listened:
            self._pubs['mask'].publish(serialized_image(header, result.mask, 'mono8'))
        if result.regions is not None:
            self._ids = ids = self._tracked_ids(header, result.regions)
            if 'detections' in listened:
                self._pubs['detections'].publish(
                    detections_msg(header, result.regions, labels, ids))
            if 'tracks' in listened:
                self._pubs['tracks'].publish(tracks_msg(header, self._tracks, labels,
                                                        self._camera))
        if result.mask is not None and 'mask_compressed' in listened:
            self._pubs['mask_compressed'].publish(
                compressed_msg(header, result.mask, 'mono8', 'png'))
        if 'camera_info' in listened:
            self._camera_infos.add_b(MaskGeometry(header, result.mask_size))

    def _tracked_ids(self, header: Header, regions) -> list[str]:
        """Each region's track id ('' until its track is confirmed), from the header stamp."""
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        ids = [''] * len(regions)
        self._tracks = self._tracker.update(regions, stamp)
        for track in self._tracks:
            if track.region is not None:
                ids[track.region] = str(track.track_id)
        return ids

    def publish_objects(self, header: Header, result: FrameResult,
                        labels: tuple[str, ...]) -> None:
        """The 3D outputs, once every camera's mask and detections of the batch are out.

        Sent now if the frame's depth image is here, else when it comes.
        """
        self._depth.add_frame(header, result, self._ids if result.regions is not None else [],
                              labels, self._listening)

    def publish_views(self, header: Header, result: FrameResult, jpeg_quality: int) -> None:
        """The colour mask and overlay, once every camera's mask of the batch is out."""
        listened = self._listening
        if result.color_mask is not None:
            self._pubs['color_mask'].publish(serialized_image(header, result.color_mask, 'rgb8'))
        if result.overlay is not None:
            if result.regions is not None:  # tracked in publish(): ids and headings drawn on
                draw_tracks(result.overlay, self._tracks)
            if 'overlay' in listened:
                self._pubs['overlay'].publish(serialized_image(header, result.overlay, 'rgb8'))
            if 'overlay_compressed' in listened:
                self._pubs['overlay_compressed'].publish(compressed_msg(
                    header, result.overlay, 'rgb8', 'jpeg', jpeg_quality))

    def _publish_camera_info(self, info: CameraInfo, mask: MaskGeometry) -> None:
        self._pubs['camera_info'].publish(mask_camera_info(info, mask.header, *mask.size))
