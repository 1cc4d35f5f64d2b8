"""Arrays and regions -> ROS messages (message types only; no rclpy).

Image data is assigned as `bytes`: rclpy copies bytes in ~0.1 ms for a 640x480 frame, while a
numpy array or memoryview costs tens of milliseconds (measured, see README).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image
from vision_msgs.msg import (Detection2D, Detection2DArray, LabelInfo, ObjectHypothesisWithPose,
                             VisionClass)

from jetson_seg.vision.image_conversion import encode_mono8, encode_rgb8
from jetson_seg.vision.postprocess import Region


_ENCODERS = {'mono8': encode_mono8, 'rgb8': encode_rgb8}


def image_msg(header, pixels: np.ndarray, encoding: str) -> Image:
    """A sensor_msgs/Image of an HxW uint8 array ('mono8') or an HxWx3 one ('rgb8')."""
    if encoding not in _ENCODERS:
        raise ValueError(f'image_msg encodes mono8 or rgb8, not {encoding}')
    data, step = _ENCODERS[encoding](pixels)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = step
    msg.data = data
    return msg


def detections_msg(header, found: Sequence[Region], class_names: Sequence[str]
                   ) -> Detection2DArray:
    """One Detection2D per region: box centre/size in input pixels, class name and mean score."""
    out = Detection2DArray()
    out.header = header
    for index, region in enumerate(found):
        det = Detection2D()
        det.header = header
        det.id = str(index)
        det.bbox.center.position.x = (region.x0 + region.x1) / 2.0
        det.bbox.center.position.y = (region.y0 + region.y1) / 2.0
        det.bbox.size_x = float(region.x1 - region.x0)
        det.bbox.size_y = float(region.y1 - region.y0)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = class_names[region.class_id]
        hypothesis.hypothesis.score = region.score
        hypothesis.pose.pose.position.x = det.bbox.center.position.x
        hypothesis.pose.pose.position.y = det.bbox.center.position.y
        det.results.append(hypothesis)
        out.detections.append(det)
    return out


def detection_boxes(msg: Detection2DArray) -> list[tuple[float, float, float, float, str, float]]:
    """The inverse of `detections_msg`: (x0, y0, x1, y1, class name, score) per detection."""
    boxes = []
    for det in msg.detections:
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        half_w, half_h = det.bbox.size_x / 2, det.bbox.size_y / 2
        best = det.results[0].hypothesis
        boxes.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h, best.class_id,
                      best.score))
    return boxes


def label_info_msg(header, class_names: Sequence[str], threshold: float = 0.0) -> LabelInfo:
    """Class id -> name table for vision_msgs consumers."""
    msg = LabelInfo()
    msg.header = header
    msg.threshold = float(threshold)
    for class_id, name in enumerate(class_names):
        msg.class_map.append(VisionClass(class_id=class_id, class_name=name))
    return msg


def diagnostics_msg(stamp, name: str, hardware_id: str, level_ok: bool, message: str,
                    values: dict[str, object]) -> DiagnosticArray:
    """A DiagnosticArray with one status: OK or WARN with the message and the key figures."""
    status = DiagnosticStatus()
    status.level = DiagnosticStatus.OK if level_ok else DiagnosticStatus.WARN
    status.name = name
    status.hardware_id = hardware_id
    status.message = message
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [status]
    return out
