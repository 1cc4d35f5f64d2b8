"""StampMatcher without DDS: plain objects with header.stamp, in both orders and from threads."""

from __future__ import annotations

import random
import sys
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

from jetson_seg.ros.stamp_matcher import StampMatcher


@dataclass
class Item:
    """Anything with header.stamp, named so a test can tell which one was paired."""

    name: str
    nanosec: int
    header: SimpleNamespace = field(init=False)

    def __post_init__(self) -> None:
        self.header = SimpleNamespace(stamp=SimpleNamespace(sec=7, nanosec=self.nanosec))


def _matcher(size: int = 30) -> tuple[StampMatcher, list[tuple[str, str]]]:
    pairs: list[tuple[str, str]] = []
    return StampMatcher(lambda a, b: pairs.append((a.name, b.name)), size), pairs


def test_a_first_then_b_pairs_them_in_a_b_order():
    matcher, pairs = _matcher()
    matcher.add_a(Item('info', 5))
    assert pairs == []
    matcher.add_b(Item('mask', 5))
    assert pairs == [('info', 'mask')]


def test_b_first_then_a_pairs_them_in_a_b_order():
    matcher, pairs = _matcher()
    matcher.add_b(Item('mask', 5))
    matcher.add_a(Item('info', 5))
    assert pairs == [('info', 'mask')]


def test_items_of_different_stamps_wait_and_pair_only_with_their_own():
    matcher, pairs = _matcher()
    for stamp in (1, 2, 3):
        matcher.add_a(Item(f'a{stamp}', stamp))
    matcher.add_b(Item('b2', 2))
    matcher.add_b(Item('b9', 9))
    matcher.add_b(Item('b1', 1))
    assert pairs == [('a2', 'b2'), ('a1', 'b1')]


def test_seconds_and_nanoseconds_both_make_the_stamp():
    matcher, pairs = _matcher()
    early = Item('a', 5)
    early.header.stamp.sec = 6
    matcher.add_a(early)
    matcher.add_b(Item('b', 5))  # sec 7: another stamp
    assert pairs == []


def test_a_paired_item_is_used_once():
    matcher, pairs = _matcher()
    matcher.add_a(Item('a', 5))
    matcher.add_b(Item('b', 5))
    matcher.add_b(Item('b again', 5))  # its partner is gone: it waits for a new one
    assert pairs == [('a', 'b')]
    matcher.add_a(Item('a again', 5))
    assert pairs == [('a', 'b'), ('a again', 'b again')]


def test_the_oldest_unmatched_items_are_forgotten_beyond_size():
    matcher, pairs = _matcher(size=3)
    for stamp in range(1, 5):  # 1 is pushed out by 4
        matcher.add_a(Item(f'a{stamp}', stamp))
    matcher.add_b(Item('b1', 1))
    assert pairs == []
    for stamp in (2, 3, 4):
        matcher.add_b(Item(f'b{stamp}', stamp))
    assert pairs == [('a2', 'b2'), ('a3', 'b3'), ('a4', 'b4')]


def test_each_side_is_bounded_on_its_own():
    matcher, pairs = _matcher(size=3)
    for stamp in range(100):  # a camera_info stream whose images never come
        matcher.add_a(Item(f'a{stamp}', stamp))
    for stamp in range(100):
        matcher.add_b(Item(f'b{stamp}', stamp))
    assert pairs == [('a97', 'b97'), ('a98', 'b98'), ('a99', 'b99')]


def test_a_repeated_stamp_replaces_the_waiting_item_and_counts_as_new():
    matcher, pairs = _matcher(size=2)
    matcher.add_a(Item('first', 1))
    matcher.add_a(Item('other', 2))
    matcher.add_a(Item('resent', 1))  # replaces 'first' and is now the newest ...
    matcher.add_a(Item('third', 3))  # ... so 'other' is the one pushed out
    for stamp in (1, 2, 3):
        matcher.add_b(Item(f'b{stamp}', stamp))
    assert pairs == [('resent', 'b1'), ('third', 'b3')]


def test_two_threads_feeding_the_two_sides_pair_every_stamp_exactly_once():
    """Info arrives on the executor's thread, masks on the scheduler's: no pair may be lost.

    Fails when finding the partner and queueing the item are not one step (two threads then
    both queue one stamp); under CPython's lock it passes even with no lock in the matcher.
    """
    stamps = list(range(20000))
    pairs: list[tuple[int, int]] = []
    matcher = StampMatcher(lambda a, b: pairs.append((a.nanosec, b.nanosec)), size=len(stamps))
    random.Random(1).shuffle(stamps)  # one order for both: the same stamp often meets itself
    start = threading.Barrier(2)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can

    def feed(add, order) -> None:
        start.wait()
        for stamp in order:
            add(Item('', stamp))

    threads = [threading.Thread(target=feed, args=(matcher.add_a, stamps)),
               threading.Thread(target=feed, args=(matcher.add_b, stamps))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert sorted(pairs) == [(stamp, stamp) for stamp in sorted(stamps)]


def test_on_pair_runs_outside_the_lock_so_it_may_feed_the_matcher():
    matcher: StampMatcher
    pairs: list[str] = []

    def on_pair(a, b) -> None:
        pairs.append(a.name)
        if a.name == 'first':  # a callback that hands on an item (would deadlock under the lock)
            matcher.add_a(Item('second', 6))

    matcher = StampMatcher(on_pair)
    matcher.add_b(Item('b6', 6))
    done = threading.Thread(target=lambda: (matcher.add_a(Item('first', 5)),
                                            matcher.add_b(Item('b5', 5))), daemon=True)
    done.start()
    done.join(timeout=5)
    assert not done.is_alive() and pairs == ['first', 'second']
