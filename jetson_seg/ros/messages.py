"""Arrays and regions -> ROS messages (message types only; no rclpy).

Image data is assigned as `bytes`: rclpy copies bytes in ~0.1 ms for a 640x480 frame, while a
numpy array or memoryview costs tens of milliseconds (measured, see README). The node itself
publishes images as CDR bytes (ros/serialized.py), which copies the pixels once.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from jetson_seg_msgs.msg import Track as TrackMsg
from jetson_seg_msgs.msg import TrackArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from vision_msgs.msg import (Detection2D, Detection2DArray, Detection3D, Detection3DArray,
                             LabelInfo, ObjectHypothesisWithPose, VisionClass)

from jetson_seg.vision.camera_model import CameraModel
from jetson_seg.vision.depth import POINT_DTYPE, POINT_FIELDS, Object3D
from jetson_seg.vision.image_conversion import encode_compressed, packed_rows
from jetson_seg.vision.postprocess import Region
from jetson_seg.vision.tracker import Track


def image_msg(header, pixels: np.ndarray, encoding: str) -> Image:
    """A sensor_msgs/Image of an HxW uint8 array ('mono8') or an HxWx3 one ('rgb8')."""
    rows, step = packed_rows(pixels, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(rows.shape[0]), int(rows.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = step
    msg.data = rows.tobytes()
    return msg


def compressed_msg(header, pixels: np.ndarray, encoding: str, fmt: str,
                   jpeg_quality: int = 80) -> CompressedImage:
    """A CompressedImage as image_transport's compressed plugin writes it ('rgb8; jpeg ...')."""
    msg = CompressedImage()
    msg.header = header
    msg.format, msg.data = encode_compressed(pixels, encoding, fmt, jpeg_quality)
    return msg


def class_labels(class_names: Sequence[str], as_names: bool) -> tuple[str, ...]:
    """Detection class_id per class index: the numeric id as a string, as LabelInfo maps it."""
    return tuple(class_names) if as_names else tuple(str(i) for i in range(len(class_names)))


def class_index(class_id: str, class_names: Sequence[str]) -> int:
    """Class index of a detection's class_id, whether published as a numeric id or a name."""
    return int(class_id) if class_id.isdigit() else list(class_names).index(class_id)


def _set_box(bbox, x0: float, y0: float, x1: float, y1: float) -> None:
    """A BoundingBox2D from corners (x1, y1 exclusive), in input-image pixels."""
    bbox.center.position.x = (x0 + x1) / 2.0
    bbox.center.position.y = (y0 + y1) / 2.0
    bbox.size_x = float(x1 - x0)
    bbox.size_y = float(y1 - y0)


def detections_msg(header, found: Sequence[Region], labels: Sequence[str],
                   ids: Sequence[str] | None = None) -> Detection2DArray:
    """One Detection2D per region: box centre/size in input pixels, class label and mean score.

    `labels[class index]` is the hypothesis class_id (see `class_labels`); `ids[i]` is region
    i's track id ('' while its track is not confirmed), or its index when no ids are given.
    """
    out = Detection2DArray()
    out.header = header
    for index, region in enumerate(found):
        det = Detection2D()
        det.header = header
        det.id = ids[index] if ids is not None else str(index)
        _set_box(det.bbox, region.x0, region.y0, region.x1, region.y1)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = labels[region.class_id]
        hypothesis.hypothesis.score = region.score
        hypothesis.pose.pose.position.x = det.bbox.center.position.x
        hypothesis.pose.pose.position.y = det.bbox.center.position.y
        det.results.append(hypothesis)
        out.detections.append(det)
    return out


def detections_3d_msg(header, located: Sequence[Object3D], labels: Sequence[str],
                      ids: Sequence[str]) -> Detection3DArray:
    """One Detection3D per located object: box centre and size in metres (optical frame).

    Class label and score are its region's, as on the 2D detection, and so is its id
    (`ids[region index]`, see `detections_msg`); the box is axis-aligned (identity orientation).
    """
    out = Detection3DArray()
    out.header = header
    for found in located:
        det = Detection3D()
        det.header = header
        det.id = ids[found.region]
        center = det.bbox.center
        center.position.x, center.position.y, center.position.z = found.center
        center.orientation.w = 1.0
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = found.size
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = labels[found.class_id]
        hypothesis.hypothesis.score = found.score
        hypothesis.pose.pose = copy.deepcopy(center)
        det.results.append(hypothesis)
        out.detections.append(det)
    return out


def point_cloud_msg(header, points: np.ndarray) -> PointCloud2:
    """An unordered, dense PointCloud2 (height 1) of POINT_DTYPE points: x, y, z, label, id."""
    assert points.dtype == POINT_DTYPE
    out = PointCloud2()
    out.header = header
    out.height, out.width = 1, int(points.size)
    out.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
                  for name, offset, datatype, count in POINT_FIELDS]
    out.is_bigendian = False
    out.point_step = POINT_DTYPE.itemsize
    out.row_step = out.point_step * out.width
    out.data = points.astype(POINT_DTYPE.newbyteorder('<'), copy=False).tobytes()
    out.is_dense = True  # no point without a reading is sent
    return out


def tracks_msg(header, tracks: Sequence[Track], labels: Sequence[str],
               camera: CameraModel | None = None) -> TrackArray:
    """The confirmed tracks of a frame: ids, boxes, image velocities and ages.

    With the camera's model (from its camera_info) each track also gets its viewing direction
    and that direction's rate; without one they stay zero.
    """
    out = TrackArray()
    out.header = header
    if camera is not None and tracks:
        centres = np.array([((t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2)
                            for t in tracks])
        rays, rates = camera.rays_and_rates(centres, np.array([t.velocity for t in tracks]))
    for index, track in enumerate(tracks):
        msg = TrackMsg(id=str(track.track_id), class_id=labels[track.class_id],
                       score=float(track.score), seen=track.within is not None,
                       shares_region=track.shares_region,
                       velocity_x=float(track.velocity[0]), velocity_y=float(track.velocity[1]),
                       age=float(track.age), since_seen=float(track.missed), hits=track.hits)
        _set_box(msg.bbox, *track.box)
        if camera is not None:
            direction, rate = msg.direction, msg.direction_rate
            direction.x, direction.y, direction.z = (float(v) for v in rays[index])
            rate.x, rate.y, rate.z = (float(v) for v in rates[index])
        out.tracks.append(msg)
    return out


def detection_boxes(msg: Detection2DArray) -> list[tuple[float, float, float, float, str, float]]:
    """The inverse of `detections_msg`: (x0, y0, x1, y1, class_id, score) per detection."""
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


def mask_camera_info(info: CameraInfo, header, width: int, height: int) -> CameraInfo:
    """`info` re-expressed for a mask of width x height covering the whole input image.

    As image_proc's resize does: K and P scaled per axis (fx, cx, Tx by the x factor; fy, cy
    by the y factor), width/height set to the mask's, a set ROI scaled the same way;
    distortion, R and binning are kept (REP 104). At the input resolution `info` is copied.
    """
    out = CameraInfo()
    out.header = header
    out.distortion_model = info.distortion_model
    out.d, out.r = list(info.d), list(info.r)
    out.binning_x, out.binning_y = info.binning_x, info.binning_y
    out.width, out.height = int(width), int(height)
    sx = width / info.width if info.width else 1.0
    sy = height / info.height if info.height else 1.0
    k = np.array(info.k, np.float64).reshape(3, 3)
    p = np.array(info.p, np.float64).reshape(3, 4)
    for matrix in (k, p):  # row 0 maps to u (fx, skew, cx, Tx), row 1 to v (fy, cy, Ty)
        matrix[0] *= sx
        matrix[1] *= sy
    out.k, out.p = k.reshape(-1).tolist(), p.reshape(-1).tolist()
    roi = info.roi
    out.roi.do_rectify = roi.do_rectify
    out.roi.x_offset, out.roi.width = round(roi.x_offset * sx), round(roi.width * sx)
    out.roi.y_offset, out.roi.height = round(roi.y_offset * sy), round(roi.height * sy)
    return out


def diagnostics_msg(stamp, name: str, hardware_id: str, level: int, message: str,
                    values: dict[str, object]) -> DiagnosticArray:
    """A DiagnosticArray with one status: level (OK/WARN/ERROR), message and the key figures."""
    status = DiagnosticStatus()
    status.level = bytes([level])
    status.name = name
    status.hardware_id = hardware_id
    status.message = message
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [status]
    return out
