r"""Record ROS topics to a rosbag2 bag (sqlite3 or MCAP) and close it cleanly on Ctrl-C/SIGTERM.

    python -m jetson_seg.tools.bag_recorder output/run_bag --topics /camera/image_raw \\
        segmentation/mask segmentation/detections --storage mcap

Messages are stored as the serialized bytes received (no conversion). Like `ros2 bag record`,
a topic is subscribed reliable only when all its publishers are reliable, else best effort, and
transient-local when all its publishers are (latched topics such as label_info), and the
publishers' offered QoS profiles go into the bag's metadata, so `ros2 bag play` offers label_info
latched again. Receive times come from the node clock: /clock under use_sim_time.
Topics that appear later are picked up while recording.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from jetson_seg.ros.interface import qos
from jetson_seg.ros.shutdown import ShutdownRequest
from jetson_seg.tools.bags import STORAGES, typestore
from jetson_seg.tools.node_client import message_class, split_ros_args


def bag_qos(profile: QoSProfile):
    """An rclpy QoS profile as rosbag2 metadata stores it (rmw's enum values on both sides)."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    def duration(value) -> QosTime:
        return QosTime(*divmod(int(value.nanoseconds), 1_000_000_000))
    return Qos(QosHistory(int(profile.history)), int(profile.depth),
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               duration(profile.deadline), duration(profile.lifespan),
               QosLiveliness(int(profile.liveliness)),
               duration(profile.liveliness_lease_duration),
               bool(profile.avoid_ros_namespace_conventions))


class BagRecorder:
    """Subscribes each wanted topic once it is on the graph and writes what arrives."""

    def __init__(self, node, path: Path, topics: list[str], storage: str = 'sqlite3') -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.node = node
        self.wanted = [node.resolve_topic_name(t) for t in topics]
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP
                             if storage == 'mcap' else StoragePlugin.SQLITE3)
        self.writer.open()
        self.store = typestore()
        self.subscriptions: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def discover(self) -> None:
        """Subscribe wanted topics that now have publishers."""
        types = dict(self.node.get_topic_names_and_types())
        for topic in self.wanted:
            if topic in self.subscriptions or topic not in types:
                continue
            msgtype = types[topic][0]
            infos = self.node.get_publishers_info_by_topic(topic)
            reliable = bool(infos) and all(
                i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
            latched = bool(infos) and all(  # e.g. label_info: get what was sent before we came
                i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
            conn = self.writer.add_connection(
                topic, msgtype, typestore=self.store,
                offered_qos_profiles=[bag_qos(i.qos_profile) for i in infos])
            self.counts[topic] = 0

            def write(data: bytes, conn=conn, topic=topic) -> None:
                self.writer.write(conn, self.node.get_clock().now().nanoseconds, data)
                self.counts[topic] += 1
            self.subscriptions[topic] = self.node.create_subscription(
                message_class(msgtype), topic, write,
                qos('reliable' if reliable else 'best_effort', 100, latched), raw=True)

    def close(self) -> None:
        """Write the bag's metadata; the bag is complete and readable afterwards."""
        for sub in self.subscriptions.values():
            self.node.destroy_subscription(sub)
        self.writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('output', type=Path, help='bag folder to create (must not exist)')
    parser.add_argument('--topics', nargs='+', required=True)
    parser.add_argument('--storage', choices=STORAGES, default='sqlite3')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after N s (0: never)')
    own_args, ros_args = split_ros_args(argv)
    args = parser.parse_args(own_args)
    if args.output.exists():
        parser.error(f'{args.output} exists; choose a new folder')
    shutdown = ShutdownRequest().install()  # Ctrl-C/SIGTERM end the loop; the bag is closed
    rclpy.init(args=['bag_recorder', *ros_args], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('bag_recorder')
    recorder = BagRecorder(node, args.output, args.topics, args.storage)
    print(f'recording {recorder.wanted} to {args.output}', flush=True)
    started = last_discovery = time.time()
    recorder.discover()
    try:
        while not shutdown.requested and \
                (not args.duration or time.time() - started < args.duration):
            rclpy.spin_once(node, timeout_sec=0.1)
            if time.time() - last_discovery > 0.5:
                recorder.discover()
                last_discovery = time.time()
    finally:
        recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f'closed {args.output}: ' + ', '.join(f'{t} {n}' for t, n in recorder.counts.items()),
          flush=True)


if __name__ == '__main__':
    main()
