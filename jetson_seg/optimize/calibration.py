"""INT8 calibration frames from a rosbag image topic or an image folder, shrunk as in the node."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from jetson_seg.vision.image_conversion import DecodedImage, decode_compressed, decode_image
from jetson_seg.vision.preprocess import to_network_input

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')


def bag_images(bag: Path, topic: str) -> Iterator[DecodedImage]:
    """Decoded images of `topic` in a rosbag2 folder (sqlite3 or MCAP), raw or compressed."""
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            topics = sorted({c.topic for c in reader.connections})
            raise ValueError(f'topic {topic} not in {bag}; it has {topics}')
        for conn, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, conn.msgtype)
            yield decode_compressed(msg) if conn.msgtype.endswith('CompressedImage') \
                else decode_image(msg)


def folder_images(folder: Path) -> Iterator[DecodedImage]:
    """Images of a folder in name order (BGR as OpenCV reads them)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f'no {"/".join(IMAGE_SUFFIXES)} images in {folder}')
    for path in files:
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if pixels is not None:
            yield DecodedImage(pixels, 'bgr')


def calibration_source(config) -> Callable[[tuple[int, int]], Iterable[np.ndarray]] | None:
    """A factory of calibration frames for `config`, or None to use generated scenes."""
    if config.calibration_bag:
        images = lambda: bag_images(Path(config.calibration_bag), config.calibration_topic)  # noqa
    elif config.calibration_images:
        images = lambda: folder_images(Path(config.calibration_images))  # noqa: E731
    else:
        return None

    def frames(input_hw: tuple[int, int]) -> Iterator[np.ndarray]:
        for count, image in enumerate(images()):
            if count >= config.calibration_frames:
                return
            yield to_network_input(image, input_hw)
    return frames
