"""At most so many grants a second per key: the viewer images' rate cap.

A robot acts on every mask; the colour mask and overlay are pictures for people, and a viewer
is served well at 10-15 Hz. Capping them frees the CPU that 640x480 rgb8 images cost (making
and publishing them: about a quarter of the node's work per frame beside the engine). No rclpy.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable

#: A frame that comes this fraction of a period early still counts as on time (camera jitter):
#: 30 Hz frames under a 15 Hz cap are granted every other frame, not every third.
EARLY = 0.1


class RateCap:
    """Grants at most `rate` times a second for each key; a rate of 0 grants every time."""

    def __init__(self, rate: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._due: dict[Hashable, float] = {}

    def allow(self, key: Hashable) -> bool:
        """True when `key` may have its next grant now (and take it)."""
        if self.rate <= 0:
            return True
        now, period = self._clock(), 1.0 / self.rate
        due = self._due.get(key, now)
        if now + EARLY * period < due:
            return False
        if due < now - period:  # after a pause the cadence starts afresh: no burst
            due = now
        self._due[key] = due + period
        return True
