"""Evaluate the segmentation node on a bag with ground truth: quality, latency, drops.

    python -m jetson_seg.tools.evaluate BAG --lockstep --output output/eval
    python -m jetson_seg.tools.evaluate BAG --rate 60 --output output/eval_60hz

Starts the node (unless --no-start-node), replays the bag's image topic through it (lockstep:
every frame answered before the next; or at a fixed rate), and compares masks with the bag's
ground-truth topic and detections with boxes derived from it. Prints a table and writes
report.json and report.png. Latency is the time from sending a frame to receiving its mask.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jetson_seg.allocator import keep_large_allocations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('bag', type=Path)
    parser.add_argument('--image-topic', default='/camera/image_raw',
                        help='raw or compressed image topic in the bag')
    parser.add_argument('--truth-topic', default='/camera/ground_truth',
                        help='mono8 class-id masks with the images\' stamps')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--lockstep', action='store_true', help='default when --rate is not set')
    mode.add_argument('--rate', type=float, help='send frames at this rate (Hz)')
    parser.add_argument('--output', type=Path, default=Path('output/evaluation'))
    parser.add_argument('--no-start-node', action='store_true',
                        help='use a node that is already running on this ROS graph')
    parser.add_argument('--namespace', default='', help='namespace of the node under test')
    parser.add_argument('--domain-id', type=int, default=78)
    parser.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE')
    args = parser.parse_args(argv)
    keep_large_allocations()  # this process sends and receives frames too

    import numpy as np
    import rclpy
    from tqdm import tqdm

    from jetson_seg.tools.bags import bag_topics, deserialize, read_messages
    from jetson_seg.ros.interface import stamp_key
    from jetson_seg.tools.node_client import NodeClient, NodeUnderTest, isolated_env
    from jetson_seg.tools.report import plot_run, summarize, table, write_json
    from jetson_seg.training.scenes import CLASS_NAMES, boxes_from_mask

    topics = bag_topics(args.bag)
    for topic in (args.image_topic, args.truth_topic):
        if topic not in topics:
            parser.error(f'{topic} not in {args.bag}; it has {sorted(topics)}')
    compressed = topics[args.image_topic][0].endswith('CompressedImage')
    truth = {}
    for msg in read_messages(args.bag, [args.truth_topic]):
        m = deserialize(msg)
        mask = np.asarray(m.data, np.uint8).reshape(m.height, m.step)[:, :m.width]
        truth[stamp_key(m.header.stamp)] = (mask, boxes_from_mask(mask))
    frames = []
    for msg in read_messages(args.bag, [args.image_topic]):
        frames.append((stamp_key(deserialize(msg).header.stamp), msg.cdr))

    args.output.mkdir(parents=True, exist_ok=True)
    env = isolated_env(args.domain_id) if not args.no_start_node else None
    params = dict(item.split(':=', 1) for item in args.node_param)
    if compressed:
        params['image_transport'] = 'compressed'
    node_proc = None if args.no_start_node else NodeUnderTest(
        params, args.output / 'node.log', env, args.namespace)
    rclpy.init(args=[])  # our flags are not ROS arguments
    client = NodeClient.on_own_node('jetson_seg_evaluator', namespace=args.namespace,
                                    outputs=('mask', 'detections'), compressed=compressed)
    try:
        client.connect(node_proc=node_proc, zero_counters=True)
        mode = f'{args.rate:g} Hz' if args.rate else 'lockstep'
        with tqdm(total=len(frames), desc=f'replaying ({mode})', unit='frame') as bar:
            client.stream(frames, args.rate, on_frame=lambda n: bar.update(n - bar.n))
        client.spin_for(1.5)  # one more diagnostics period
        records = sorted(client.records.values(), key=lambda r: r.sent_at)
        figures = client.figures()
        summary = summarize(records, truth.get, CLASS_NAMES, int(figures.get('rejected', 0)))
        summary.update(bag=str(args.bag), mode=mode, image_topic=args.image_topic,
                       engine=figures.get('engine'),
                       node_dropped=int(figures.get('dropped', 0)))
        write_json(summary, args.output / 'report.json')
        plot_run(records, args.output / 'report.png', f'{args.bag.name}: {mode}')
        print(table(summary, f'evaluation of {args.bag} ({mode}, engine {summary["engine"]})'))
        print(f'report.json and report.png in {args.output}/')
    finally:
        client.close()
        rclpy.try_shutdown()
        if node_proc is not None:
            node_proc.stop()


if __name__ == '__main__':
    main()
