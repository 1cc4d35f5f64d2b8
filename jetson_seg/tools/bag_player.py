r"""Play a rosbag2 bag onto ROS topics: recorded timing, rate, loop, offset, remap, lockstep.

    python -m jetson_seg.tools.bag_player BAG --rate 2.0 --topics /camera/image_raw \\
        --remap /camera/image_raw:=image
    python -m jetson_seg.tools.bag_player BAG --lockstep --answer-topic segmentation/mask
    python -m jetson_seg.tools.bag_player BAG --clock 100   # /clock from the bag's time

Messages are published as the CDR bytes stored in the bag (no conversion). In lockstep mode the
next image is sent only when the answer with the same header stamp arrived (or a timeout passed),
so every frame is evaluated, whatever the node's speed. With `--clock [HZ]` (40 Hz when no rate
is given, as `ros2 bag play --clock`), /clock carries the playback position in the bag's time, so
nodes started with use_sim_time:=true see the recording's time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import rclpy
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from jetson_seg.allocator import keep_large_allocations
from jetson_seg.ros.interface import CLIENT_OUTPUT_QOS, OUTPUTS, qos, stamp_key
from jetson_seg.tools.bags import bag_topics, deserialize, read_messages
from jetson_seg.tools.node_client import message_class, split_ros_args


class BagClock:
    """Publishes /clock at a fixed wall rate, best effort and depth 1 like rosbag2's ClockQoS."""

    def __init__(self, node, rate_hz: float) -> None:
        self.publisher = node.create_publisher(
            Clock, '/clock', QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.period = 1.0 / rate_hz
        self.next_at = 0.0

    def tick(self, bag_ns: int, force: bool = False) -> float:
        """Publish `bag_ns` if a tick is due (or `force`); returns the wall time of the next."""
        now = time.time()
        if force or now >= self.next_at:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(bag_ns), 1_000_000_000)
            self.publisher.publish(msg)
            self.next_at = now + self.period
        return self.next_at


class BagPlayer:
    """Publishes a bag's messages; one publisher per (remapped) topic."""

    def __init__(self, node, bag: Path, topics: list[str] | None, remap: dict[str, str],
                 reliability: str, clock_hz: float | None = None) -> None:
        self.node = node
        self.clock = BagClock(node, clock_hz) if clock_hz else None
        self.bag = bag
        available = bag_topics(bag)
        missing = [t for t in topics or [] if t not in available]
        if missing:
            raise ValueError(f'topics {missing} not in {bag}; it has {sorted(available)}')
        self.topics = topics or sorted(available)
        self.types = {t: available[t][0] for t in self.topics}
        self.publishers = {t: node.create_publisher(message_class(self.types[t]),
                                                    remap.get(t, t), qos(reliability, 10))
                           for t in self.topics}
        self.answers: set[int] = set()

    def wait_for_subscribers(self, timeout: float, settle: float) -> None:
        """Wait until every topic has a subscriber, then `settle` seconds more.

        DDS discovery is asymmetric: our writer can see a reader before that reader has
        matched our writer, and a volatile reader drops what arrives in between.
        """
        deadline = time.time() + timeout
        while time.time() < deadline and not all(
                p.get_subscription_count() for p in self.publishers.values()):
            rclpy.spin_once(self.node, timeout_sec=0.1)
        end = time.time() + settle
        while time.time() < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def listen(self, answer_topic: str) -> None:
        from sensor_msgs.msg import Image
        self.node.create_subscription(
            Image, answer_topic, lambda m: self.answers.add(stamp_key(m.header.stamp)),
            CLIENT_OUTPUT_QOS)

    def play(self, rate: float = 1.0, start_offset: float = 0.0, loop: bool = False,
             lockstep_topic: str | None = None, lockstep_timeout: float = 5.0) -> int:
        """Play once (or forever with `loop`); returns the number of messages published."""
        sent = 0
        while True:
            first = None
            started = time.time()
            for msg in read_messages(self.bag, self.topics):
                first = msg.log_time_ns if first is None else first
                offset = (msg.log_time_ns - first) / 1e9 - start_offset
                if offset < 0:
                    continue
                if lockstep_topic is None:
                    self._wait(started + offset / rate, started, first, rate, start_offset)
                if self.clock is not None:  # the message's time has come on /clock too
                    self.clock.tick(msg.log_time_ns, force=lockstep_topic is not None)
                self.publishers[msg.topic].publish(msg.cdr)
                sent += 1
                if lockstep_topic is not None and msg.topic == lockstep_topic:
                    key = stamp_key(deserialize(msg).header.stamp)
                    deadline = time.time() + lockstep_timeout
                    while key not in self.answers and time.time() < deadline:
                        rclpy.spin_once(self.node, timeout_sec=0.005)
            if not loop:
                self.flush()
                return sent

    def _wait(self, until: float, started: float, first_ns: int, rate: float,
              start_offset: float) -> None:
        """Spin until wall time `until`, ticking /clock with the playback position meanwhile."""
        while (now := time.time()) < until:
            wake = until
            if self.clock is not None:
                position = (now - started) * rate + start_offset
                wake = min(wake, self.clock.tick(first_ns + int(position * 1e9)))
            rclpy.spin_once(self.node, timeout_sec=max(0.0, min(wake - now, 0.05)))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until reliable readers acknowledged everything, so exiting loses no message."""
        for publisher in self.publishers.values():
            publisher.wait_for_all_acked(Duration(nanoseconds=int(timeout * 1e9)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('bag', type=Path)
    parser.add_argument('--rate', type=float, default=1.0, help='time multiplier')
    parser.add_argument('--start-offset', type=float, default=0.0, help='skip these seconds')
    parser.add_argument('--loop', action='store_true')
    parser.add_argument('--topics', nargs='*', help='only these topics (default: all)')
    parser.add_argument('--remap', action='append', default=[], metavar='FROM:=TO')
    parser.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--lockstep', action='store_true',
                        help='send the next image only after the node answered the last')
    parser.add_argument('--image-topic', default='/camera/image_raw',
                        help='bag topic whose answers lockstep waits for')
    parser.add_argument('--answer-topic', default=OUTPUTS['mask'].name)
    parser.add_argument('--clock', nargs='?', type=float, const=40.0, metavar='HZ',
                        help='publish /clock from the bag time at HZ (default 40)')
    parser.add_argument('--wait', type=float, default=10.0,
                        help='seconds to wait for subscribers before playing')
    parser.add_argument('--delay', type=float, default=0.5,
                        help='seconds to let discovery settle once subscribers are seen')
    own_args, ros_args = split_ros_args(argv)
    args = parser.parse_args(own_args)
    keep_large_allocations()  # this process sends and receives frames too
    remap = dict(item.split(':=', 1) for item in args.remap)
    rclpy.init(args=['bag_player', *ros_args])
    node = rclpy.create_node('bag_player')
    try:
        player = BagPlayer(node, args.bag, args.topics, remap, args.qos, args.clock)
        if args.lockstep:
            player.listen(args.answer_topic)
        player.wait_for_subscribers(args.wait, args.delay)
        sent = player.play(args.rate, args.start_offset, args.loop,
                           args.image_topic if args.lockstep else None)
        print(f'published {sent} messages from {args.bag}')
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
