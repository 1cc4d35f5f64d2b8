"""Pairs the items of two streams that carry the same header stamp, whichever arrives first.

A camera driver publishes camera_info just before or just after its image, and an aligned depth
image comes on its own topic: neither order nor arrival is promised, only the stamp. Each item
waits among the last few unmatched ones of its side until its partner comes; the oldest are
forgotten, so a partner that never comes costs nothing lasting.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Generic, TypeVar

from jetson_seg.ros.interface import stamp_key

A = TypeVar('A')
B = TypeVar('B')


class StampMatcher(Generic[A, B]):
    """Calls `on_pair(a, b)` for each item of side A and item of side B with one header stamp.

    Items are anything with `header.stamp`. Each side keeps its last `size` unmatched items; a
    newer item with the stamp of one waiting on its side replaces it (a driver that sent it
    again). Both sides may be fed from different threads; `on_pair` runs outside the lock.
    """

    def __init__(self, on_pair: Callable[[A, B], None], size: int = 30) -> None:
        self._on_pair = on_pair
        self._size = size
        self._lock = threading.Lock()
        self._waiting_a: collections.OrderedDict[int, A] = collections.OrderedDict()
        self._waiting_b: collections.OrderedDict[int, B] = collections.OrderedDict()

    def add_a(self, item: A) -> None:
        """An item of side A: paired now if its B is waiting, else it waits."""
        partner = self._take_or_wait(item, self._waiting_b, self._waiting_a)
        if partner is not None:
            self._on_pair(item, partner)

    def add_b(self, item: B) -> None:
        """An item of side B: paired now if its A is waiting, else it waits."""
        partner = self._take_or_wait(item, self._waiting_a, self._waiting_b)
        if partner is not None:
            self._on_pair(partner, item)

    def _take_or_wait(self, item, partners: collections.OrderedDict,
                      mine: collections.OrderedDict):
        """The waiting partner of `item` (removed), or None after queueing `item` on its side."""
        key = stamp_key(item.header.stamp)
        with self._lock:
            if key in partners:
                return partners.pop(key)
            mine[key] = item
            mine.move_to_end(key)
            while len(mine) > self._size:
                mine.popitem(last=False)
            return None
