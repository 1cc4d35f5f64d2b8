"""An RGB-D camera for a running node: colour, depth and depth/camera_info in, objects in 3D out.

Wraps a NodeClient (the colour input and the 2D outputs) with the depth inputs, raw or as
compressedDepth, and the 3D outputs collected by stamp; scores the node's 3D detections against
a generated RGB-D frame's truth (training/depth_scenes.py). The demo and the DDS tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from jetson_seg.ros.interface import (CLIENT_OUTPUT_QOS, COMPRESSED_DEPTH, DEPTH,
                                      DEPTH_CAMERA_INFO, DEPTH_OUTPUTS, client_input_qos,
                                      set_stamp, stamp_key)
from jetson_seg.ros.messages import class_index, image_msg
from jetson_seg.tools.node_client import NodeClient
from jetson_seg.training.depth_scenes import (DepthScene, Errors3D, box_errors, match_regions,
                                              millimetres)
from jetson_seg.training.scenes import CLASS_NAMES
from jetson_seg.vision.camera_model import CameraModel
from jetson_seg.vision.image_conversion import decode_image


def depth_image_msg(metres: np.ndarray, encoding: str) -> Image:
    """A depth image as REP 117 has it: 16UC1 millimetres with 0, or 32FC1 metres with NaN."""
    if encoding == '16UC1':
        values = millimetres(metres).astype('<u2')
    else:
        values = metres.astype('<f4')
    msg = Image(height=values.shape[0], width=values.shape[1], encoding=encoding,
                is_bigendian=0, step=values.shape[1] * values.itemsize)
    msg.data = values.tobytes()
    return msg


def camera_info_msg(camera: CameraModel) -> CameraInfo:
    """A calibrated camera's camera_info (pinhole, no distortion)."""
    info = CameraInfo(width=camera.width, height=camera.height, distortion_model='plumb_bob')
    info.k = [camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0]
    info.p = [camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


@dataclass
class Answer:
    """What the node sent for one frame."""

    mask: np.ndarray
    detections: list  # Detection2D
    detections_3d: list | None  # Detection3D, None if none came
    points: PointCloud2 | None


@dataclass
class RgbdClient:
    """A NodeClient (its outputs must include mask and detections) plus depth in, 3D out."""

    client: NodeClient
    namespace: str = ''
    compressed: bool = False  # depth goes to depth/compressedDepth (depth.transport)
    frame_id: str = 'camera'
    three_d: dict[str, dict[int, object]] = field(default_factory=dict)
    subscriptions: list = field(default_factory=list)

    def __post_init__(self) -> None:
        node = self.client.node
        depth = COMPRESSED_DEPTH if self.compressed else DEPTH
        self.depth_pub = node.create_publisher(depth.type, depth.under(self.namespace),
                                               client_input_qos(True))
        self.info_pub = node.create_publisher(DEPTH_CAMERA_INFO.type,
                                              DEPTH_CAMERA_INFO.under(self.namespace),
                                              client_input_qos(True))
        for key, topic in DEPTH_OUTPUTS.items():
            got = self.three_d.setdefault(key, {})
            self.subscriptions.append(node.create_subscription(
                topic.type, topic.under(self.namespace),
                lambda msg, got=got: got.__setitem__(stamp_key(msg.header.stamp), msg),
                CLIENT_OUTPUT_QOS))

    def ready(self, timeout: float = 30.0) -> bool:
        """Whether the node subscribed the depth input and publishes the 3D outputs in time."""
        node = self.client.node
        topics = [node.resolve_topic_name(t.under(self.namespace))
                  for t in DEPTH_OUTPUTS.values()]
        return self.client.spin_until(lambda: self.depth_pub.get_subscription_count() > 0 and
                                      all(node.count_publishers(t) for t in topics), timeout)

    def send_depth(self, msg: Image | CompressedImage, info: CameraInfo, key: int) -> None:
        """A depth image and its camera_info with the stamp `key`."""
        for header in (info.header, msg.header):
            set_stamp(header, key)
            header.frame_id = self.frame_id
        self.info_pub.publish(info)
        self.depth_pub.publish(msg)

    def send_colour(self, rgb: np.ndarray, key: int):
        """The colour frame with the stamp `key`; its NodeClient record."""
        msg = image_msg(Header(frame_id=self.frame_id), rgb, 'rgb8')
        set_stamp(msg.header, key)
        return self.client.send(msg)

    def answer(self, record, with_3d: bool = True, timeout: float = 10.0) -> Answer:
        """The node's outputs for a sent frame (with its 3D ones unless `with_3d` is False)."""
        def done() -> bool:
            complete = len(record.arrived_at) == 2
            return complete and (not with_3d or all(record.key in got
                                                    for got in self.three_d.values()))
        if not self.client.spin_until(done, timeout):
            raise TimeoutError(f'no complete answer for stamp key {record.key}: '
                               f'{sorted(record.arrived_at)}')
        d3, points = (self.three_d[k].get(record.key) for k in ('detections_3d', 'points'))
        return Answer(decode_image(record.answers['mask']).pixels[..., 0],
                      list(record.answers['detections'].detections),
                      None if d3 is None else list(d3.detections), points)

    def exchange(self, scene: DepthScene, key: int, encoding: str = '16UC1') -> Answer:
        """Depth first (as a driver often sends it), then the colour frame; the answers."""
        self.send_depth(depth_image_msg(scene.depth, encoding),
                        camera_info_msg(scene.depth_camera), key)
        self.client.spin_for(0.02)
        return self.answer(self.send_colour(scene.image, key))


def located_errors(scene: DepthScene, answer: Answer) -> list[Errors3D]:
    """box_errors of each true object the node located.

    Each 3D box is matched to a true object by its outline seen through the colour camera
    (same class, 2D IoU >= 0.5), so track ids are not needed (they stay empty until a track
    is confirmed).
    """
    camera = scene.color_camera
    boxes, located = [], answer.detections_3d or []
    for det in located:
        c, s = det.bbox.center.position, det.bbox.size
        x0, y0 = (c.x - s.x / 2) / c.z * camera.fx + camera.cx, \
            (c.y - s.y / 2) / c.z * camera.fy + camera.cy
        x1, y1 = (c.x + s.x / 2) / c.z * camera.fx + camera.cx, \
            (c.y + s.y / 2) / c.z * camera.fy + camera.cy
        boxes.append((x0, y0, x1, y1, class_index(det.results[0].hypothesis.class_id,
                                                  CLASS_NAMES)))
    found = []
    for truth, index in match_regions(boxes, scene.objects).items():
        c, s = located[index].bbox.center.position, located[index].bbox.size
        found.append(box_errors((c.x, c.y, c.z), (s.x, s.y, s.z), scene.objects[truth]))
    return found
