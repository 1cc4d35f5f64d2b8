"""Write a rosbag2 bag of generated scenes with ground truth (no ROS needed).

Usage:
    python -m jetson_seg.tools.make_sample_bag output/sample_bag --frames 300 --rate 30 \
        --storage mcap
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jetson_seg.tools.bags import STORAGES, SampleBagSpec, make_sample_bag


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output', type=Path, help='bag folder to create (must not exist)')
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--rate', type=float, default=30.0, help='frame rate of the stamps (Hz)')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--storage', choices=STORAGES, default='sqlite3')
    parser.add_argument('--compressed', action='store_true',
                        help='also write <image topic>/compressed (jpeg)')
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f'{args.output} exists; choose a new folder')
    from tqdm import tqdm

    spec = SampleBagSpec(frames=args.frames, rate_hz=args.rate, width=args.width,
                         height=args.height, seed=args.seed, storage=args.storage,
                         compressed=args.compressed)
    with tqdm(total=args.frames, desc='writing bag', unit='frame') as bar:
        make_sample_bag(args.output, spec, progress=lambda n: bar.update(n - bar.n))
    print(f'{args.output}: {args.frames} frames, topics {spec.image_topic} (rgb8'
          f'{" + compressed" if args.compressed else ""}), {spec.truth_topic} (mono8 class ids), '
          f'{spec.info_topic}; storage {args.storage}')


if __name__ == '__main__':
    main()
