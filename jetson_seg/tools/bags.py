"""rosbag2 bags (sqlite3 or MCAP) written and read with `rosbags`, the format `ros2 bag` uses.

No rclpy here: messages are serialized to CDR with the rosbags typestore, which rclpy can publish
as-is (`publisher.publish(cdr_bytes)`), so playback needs no per-message conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from jetson_seg.training.scenes import SceneSpec, scene_stream

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
STORAGES = ('sqlite3', 'mcap')


#: vision_msgs definitions shipped with this package (what the venv builds)
OWN_VISION_MSGS = Path(__file__).resolve().parents[2] / 'interfaces' / 'vision_msgs' / 'msg'


def _vision_msgs_dir() -> Path | None:
    """A ROS install's vision_msgs definitions, else the package's own copy."""
    try:
        from ament_index_python.packages import get_package_share_directory
        folders = [Path(get_package_share_directory('vision_msgs')) / 'msg']
    except (ImportError, LookupError, OSError):  # no ament index here
        folders = []
    return next((d for d in folders + [OWN_VISION_MSGS] if d.is_dir()), None)


def typestore():
    """Message definitions of ROS 2 Kilted (the venv's wheels' distribution) plus vision_msgs.

    rosbags knows no vision_msgs, so recording detections or label_info needs them added.
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_KILTED)
    folder = _vision_msgs_dir()
    if folder is not None:
        types: dict = {}
        for path in sorted(folder.glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
        store.register(types)
    return store


@dataclass(frozen=True)
class SampleBagSpec:
    """What `make_sample_bag` writes."""

    frames: int = 300
    rate_hz: float = 30.0
    width: int = 640
    height: int = 480
    seed: int = 1
    storage: str = 'sqlite3'
    compressed: bool = False
    image_topic: str = '/camera/image_raw'
    truth_topic: str = '/camera/ground_truth'
    info_topic: str = '/camera/camera_info'
    frame_id: str = 'camera'


def _header(store, stamp_ns: int, frame_id: str):
    time = store.types['builtin_interfaces/msg/Time']
    header = store.types['std_msgs/msg/Header']
    return header(stamp=time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
                  frame_id=frame_id)


def image_message(store, pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """A rosbags sensor_msgs/Image of an HxW or HxWxC uint8 array."""
    image = store.types[IMAGE_TYPE]
    h, w = pixels.shape[:2]
    return image(header=_header(store, stamp_ns, frame_id), height=h, width=w,
                 encoding=encoding, is_bigendian=0, step=int(pixels.strides[0]),
                 data=np.ascontiguousarray(pixels).reshape(-1))


def _camera_info(store, spec: SampleBagSpec, stamp_ns: int):
    info = store.types[CAMERA_INFO_TYPE]
    roi = store.types['sensor_msgs/msg/RegionOfInterest']
    f = spec.width * 0.8
    k = np.array([f, 0, spec.width / 2, 0, f, spec.height / 2, 0, 0, 1], np.float64)
    p = np.array([f, 0, spec.width / 2, 0, 0, f, spec.height / 2, 0, 0, 0, 1, 0], np.float64)
    return info(header=_header(store, stamp_ns, spec.frame_id), height=spec.height,
                width=spec.width, distortion_model='plumb_bob', d=np.zeros(5), k=k,
                r=np.eye(3).reshape(-1), p=p, binning_x=0, binning_y=0,
                roi=roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def make_sample_bag(path: Path, spec: SampleBagSpec = SampleBagSpec(), progress=None) -> Path:
    """Write generated scenes (image, ground-truth mask, camera_info) at `spec.rate_hz`."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    if spec.storage not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {spec.storage!r}')
    store = typestore()
    plugin = StoragePlugin.MCAP if spec.storage == 'mcap' else StoragePlugin.SQLITE3
    scenes = scene_stream(spec.seed, SceneSpec(width=spec.width, height=spec.height))
    start_ns = 1_700_000_000_000_000_000
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        topics = {spec.image_topic: IMAGE_TYPE, spec.truth_topic: IMAGE_TYPE,
                  spec.info_topic: CAMERA_INFO_TYPE}
        if spec.compressed:
            topics[spec.image_topic + '/compressed'] = COMPRESSED_TYPE
        conns = {t: writer.add_connection(t, m, typestore=store) for t, m in topics.items()}
        for i in range(spec.frames):
            scene = next(scenes)
            stamp = start_ns + int(round(i * 1e9 / spec.rate_hz))
            messages = {
                spec.image_topic: image_message(store, scene.image, 'rgb8', stamp,
                                                spec.frame_id),
                spec.truth_topic: image_message(store, scene.mask, 'mono8', stamp,
                                                spec.frame_id),
                spec.info_topic: _camera_info(store, spec, stamp),
            }
            if spec.compressed:
                ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, 95])
                messages[spec.image_topic + '/compressed'] = store.types[COMPRESSED_TYPE](
                    header=_header(store, stamp, spec.frame_id),
                    format='rgb8; jpeg compressed bgr8', data=jpeg.reshape(-1))
            for topic, msg in messages.items():
                writer.write(conns[topic], stamp, store.serialize_cdr(msg, topics[topic]))
            if progress is not None:
                progress(i + 1)
    return path


@dataclass
class BagMessage:
    """One message of a bag: topic, type, receive time and CDR payload."""

    topic: str
    msgtype: str
    log_time_ns: int
    cdr: bytes


def bag_topics(path: Path) -> dict[str, tuple[str, int]]:
    """topic -> (message type, message count) of a bag."""
    from rosbags.highlevel import AnyReader

    with AnyReader([path], default_typestore=typestore()) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def read_messages(path: Path, topics: list[str] | None = None) -> Iterator[BagMessage]:
    """Messages of a bag in time order (all topics, or only `topics`)."""
    from rosbags.highlevel import AnyReader

    with AnyReader([path], default_typestore=typestore()) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, log_time, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, log_time, bytes(raw))


def deserialize(message: BagMessage):
    """Decode a BagMessage into a rosbags message object (fields as in sensor_msgs)."""
    return typestore().deserialize_cdr(message.cdr, message.msgtype)
