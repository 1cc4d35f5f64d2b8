"""Write a rosbag2 bag of generated scenes with ground truth (no ROS needed).

Usage:
    python -m jetson_seg.tools.make_sample_bag output/sample_bag --frames 300 --rate 30 \
        --storage mcap
    python -m jetson_seg.tools.make_sample_bag output/track_bag --tracking --frames 240

`--tracking` writes a tracking sequence (training/sequences.py: objects moving 3-25 px a frame
at 120 Hz, bouncing, crossing, blurred) instead of independent scenes, and its ground-truth
identities in the bag's folder (sequences.TRUTH_FILE, JSON by header stamp), which
`evaluate_tracking --bag` scores the node against.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from jetson_seg.tools.bags import (CAMERA_INFO_TYPE, IMAGE_TYPE, STORAGES, SampleBagSpec,
                                   _camera_info, image_message, make_sample_bag, typestore)
from jetson_seg.training.sequences import TRUTH_FILE, SequenceSpec, sequence_frames, truth_json

#: Stamp of a bag's first frame (ns): the one make_sample_bag uses.
START_NS = 1_700_000_000_000_000_000


def make_tracking_bag(path: Path, seed: int, sequence: SequenceSpec = SequenceSpec(),
                      bag: SampleBagSpec = SampleBagSpec(),
                      progress: Callable[[int], None] | None = None) -> Path:
    """Write the sequence `seed` (images, class masks, camera_info) and its truth file.

    Stamps are 1/sequence.rate apart; `bag` gives the topics, frame_id and storage (its size,
    rate and seed are the sequence's).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if bag.storage not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {bag.storage!r}')
    store = typestore()
    info_spec = SampleBagSpec(width=sequence.width, height=sequence.height,
                              frame_id=bag.frame_id)
    plugin = StoragePlugin.MCAP if bag.storage == 'mcap' else StoragePlugin.SQLITE3
    truth = []
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        topics = {bag.image_topic: IMAGE_TYPE, bag.truth_topic: IMAGE_TYPE,
                  bag.info_topic: CAMERA_INFO_TYPE}
        conns = {t: writer.add_connection(t, m, typestore=store) for t, m in topics.items()}
        for frame in sequence_frames(seed, sequence):
            stamp = START_NS + round(frame.stamp * 1e9)
            messages = {
                bag.image_topic: image_message(store, frame.image, 'rgb8', stamp, bag.frame_id),
                bag.truth_topic: image_message(store, frame.mask, 'mono8', stamp, bag.frame_id),
                bag.info_topic: _camera_info(store, info_spec, stamp),
            }
            for topic, msg in messages.items():
                writer.write(conns[topic], stamp, store.serialize_cdr(msg, topics[topic]))
            truth.append((stamp, frame.objects))
            if progress is not None:
                progress(frame.index + 1)
    about = {'seed': seed, 'sequence': asdict(sequence), 'image_topic': bag.image_topic}
    (Path(path) / TRUTH_FILE).write_text(truth_json(truth, about))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output', type=Path, help='bag folder to create (must not exist)')
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--rate', type=float, help='frame rate of the stamps (Hz; default 30, '
                        'with --tracking 120)')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--storage', choices=STORAGES, default='sqlite3')
    parser.add_argument('--compressed', action='store_true',
                        help='also write <image topic>/compressed (jpeg)')
    parser.add_argument('--tracking', action='store_true',
                        help=f'a tracking sequence, with its identities in {TRUTH_FILE}')
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f'{args.output} exists; choose a new folder')
    if args.tracking and args.compressed:
        parser.error('--tracking writes raw images only')
    from tqdm import tqdm

    rate = args.rate or (120.0 if args.tracking else 30.0)
    spec = SampleBagSpec(frames=args.frames, rate_hz=rate, width=args.width,
                         height=args.height, seed=args.seed, storage=args.storage,
                         compressed=args.compressed)
    with tqdm(total=args.frames, desc='writing bag', unit='frame') as bar:
        def progress(n: int) -> None:
            bar.update(n - bar.n)
        if args.tracking:
            largest = min(SequenceSpec.max_size, min(args.width, args.height) / 2 - 1)
            sequence = SequenceSpec(width=args.width, height=args.height, frames=args.frames,
                                    rate=rate, max_size=largest)  # smaller frames: smaller shapes
            make_tracking_bag(args.output, args.seed, sequence, spec, progress)
        else:
            make_sample_bag(args.output, spec, progress=progress)
    print(f'{args.output}: {args.frames} frames, topics {spec.image_topic} (rgb8'
          f'{" + compressed" if args.compressed else ""}), {spec.truth_topic} (mono8 class ids), '
          f'{spec.info_topic}; storage {args.storage}'
          f'{f"; identities in {TRUTH_FILE}" if args.tracking else ""}')


if __name__ == '__main__':
    main()
