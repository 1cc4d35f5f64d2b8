"""The segmentation node's ROS interface: topic names, QoS profiles and the stamp key.

Written once for the node and everything that talks to it (tools, tests), so a renamed topic or
a changed profile changes both sides. Outputs carry their input's header; the stamp key is how
an answer is matched to the frame it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from jetson_seg_msgs.msg import TrackArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo


@dataclass(frozen=True)
class Topic:
    """A topic name (relative, so namespaces and remaps work, unless it starts with '/')."""

    name: str
    type: type

    def under(self, prefix: str) -> str:
        """The name in a camera's (node) or a client's namespace; '' leaves it as it is."""
        return f'{prefix.rstrip("/")}/{self.name}' if prefix else self.name


IMAGE = Topic('image', Image)
COMPRESSED_IMAGE = Topic('image/compressed', CompressedImage)
#: Per-frame outputs by the names used in Wanted / FrameResult.
OUTPUTS: dict[str, Topic] = {
    'mask': Topic('segmentation/mask', Image),
    'color_mask': Topic('segmentation/color_mask', Image),
    'overlay': Topic('segmentation/overlay', Image),
    'detections': Topic('segmentation/detections', Detection2DArray),
}
#: Lazily made extras: the mask and overlay compressed for remote viewing, the mask's camera
#: geometry (from the optional CAMERA_INFO input) and the tracker's tracks.
EXTRA_OUTPUTS: dict[str, Topic] = {
    'mask_compressed': Topic('segmentation/mask/compressed', CompressedImage),
    'overlay_compressed': Topic('segmentation/overlay/compressed', CompressedImage),
    'camera_info': Topic('segmentation/camera_info', CameraInfo),
    'tracks': Topic('segmentation/tracks', TrackArray),
}
#: Every per-frame output of a camera, by name (but the 3D ones, below).
PUBLISHED: dict[str, Topic] = {**OUTPUTS, **EXTRA_OUTPUTS}
#: Objects in 3D, made when the optional DEPTH input has an image of the frame's stamp.
DEPTH_OUTPUTS: dict[str, Topic] = {
    'detections_3d': Topic('segmentation/detections_3d', Detection3DArray),
    'points': Topic('segmentation/points', PointCloud2),
}
CAMERA_INFO = Topic('camera_info', CameraInfo)
#: A depth image registered to `image` (16UC1 mm or 32FC1 m, REP 117) and its intrinsics; the
#: names follow `image` and `image/compressed` (RealSense and ZED topics are remapped onto them).
DEPTH = Topic('depth', Image)
#: The same as image_transport's compressedDepth plugin sends it (parameter depth.transport).
COMPRESSED_DEPTH = Topic('depth/compressedDepth', CompressedImage)
DEPTH_CAMERA_INFO = Topic('depth/camera_info', CameraInfo)
LABEL_INFO = Topic('segmentation/label_info', LabelInfo)
DIAGNOSTICS = Topic('/diagnostics', DiagnosticArray)


def input_topic(compressed: bool) -> Topic:
    """The image input of the chosen transport (parameter image_transport)."""
    return COMPRESSED_IMAGE if compressed else IMAGE


def qos(reliability: str, depth: int, latched: bool = False) -> QoSProfile:
    """A keep-last profile; `reliability` is a parameter value, 'reliable' or 'best_effort'."""
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliability == 'reliable'
        else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


#: Class table: published once per configure, so late joiners must get it from the history.
LABEL_INFO_QOS = qos('reliable', 1, latched=True)
DIAGNOSTICS_QOS = qos('reliable', 10)
#: camera_info input: best effort matches any driver
CAMERA_INFO_QOS = qos('best_effort', 10)
#: The node's topics take qos_overrides./<topic>.* parameters (made at configure/activate).
QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()
#: What clients subscribe outputs with: reliable, deep enough for a burst of answers.
CLIENT_OUTPUT_QOS = qos('reliable', 50)


def client_input_qos(reliable: bool) -> QoSProfile:
    """A client's image publisher: depth 1 like a camera; best effort matches any subscriber."""
    return qos('reliable' if reliable else 'best_effort', 1)


def stamp_key(stamp) -> int:
    """A header stamp as one integer (nanoseconds): answers are matched to frames by it."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def set_stamp(header, key: int) -> int:
    """Give `header` the stamp whose key is `key` (e.g. time.time_ns()); returns `key`."""
    header.stamp.sec, header.stamp.nanosec = divmod(key, 1_000_000_000)
    return key
