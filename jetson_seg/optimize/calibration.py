"""The user's own frames (a rosbag image topic or an image folder) for calibration and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import cv2

from jetson_seg.vision.image_conversion import DecodedImage, decode_compressed, decode_image

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


def user_images(bag: str, topic: str, folder: str) -> Callable[[], Iterator[DecodedImage]] | None:
    """A factory of the user's images (a bag topic, else a folder), or None if neither is given.

    A factory, because calibration may read the frames more than once.
    """
    if bag:
        return lambda: bag_images(Path(bag), topic)
    if folder:
        return lambda: folder_images(Path(folder))
    return None
