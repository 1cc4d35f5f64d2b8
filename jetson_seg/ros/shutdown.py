"""SIGINT/SIGTERM as a request the node honours between steps, never as an exception.

rclpy's own handlers shut the context down the moment a signal arrives: a lifecycle transition
still running (a model loading in on_configure) then fails to complete and the next rclpy call
raises. Here a signal only sets a flag; the main loop polls it, a blocking step such as loading a
model runs on a helper thread the caller can walk away from, and everything is torn down in order.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable, TypeVar

T = TypeVar('T')

POLL_S = 0.1  # how often waiting code looks at the flag: the longest extra delay of a stop


class ShutdownRequest:
    """Set by SIGINT or SIGTERM (after `install`); `signal_name` says which came first."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ''
        self.abandoned: list[threading.Thread] = []  # helper threads still running at exit

    def install(self) -> 'ShutdownRequest':
        """Route SIGINT and SIGTERM here (main thread only); returns self."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame) -> None:
        self.signal_name = self.signal_name or signal.Signals(signum).name
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def run_interruptibly(self, work: Callable[[], T], name: str) -> T | None:
        """Run `work` on a helper thread; its result, or None if a stop was requested first.

        The thread cannot be cancelled (a model load is mostly C++), so it is left behind as a
        daemon and recorded in `abandoned`; the process exits without waiting for it.
        """
        outcome: dict[str, object] = {}

        def target() -> None:
            try:
                outcome['value'] = work()
            except BaseException as exc:  # re-raised in the caller's thread
                outcome['error'] = exc

        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(POLL_S)
            if self.requested and thread.is_alive():
                self.abandoned.append(thread)
                return None
        if 'error' in outcome:
            raise outcome['error']
        return outcome['value']
