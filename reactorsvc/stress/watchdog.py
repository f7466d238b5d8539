"""Deadlock watchdog: a thread whose progress counter stands still too long is stuck."""

from __future__ import annotations

import faulthandler
import io
import sys
from collections.abc import Mapping
from typing import TextIO


class Watchdog:
    """check() is fed progress counters with the current time and names the stalled ones.

    Not thread-safe: one thread (the run's main thread) calls it.
    """

    def __init__(self, stall: float) -> None:
        if stall <= 0:
            raise ValueError(f"stall must be > 0 seconds, got {stall!r}")
        self.stall = stall
        self._seen: dict[str, tuple[int, float]] = {}

    def check(self, progress: Mapping[str, int], now: float) -> list[str]:
        """Names whose counter has not moved for `stall` seconds or more, as of `now`."""
        stalled = []
        for name, value in progress.items():
            seen = self._seen.get(name)
            if seen is None or seen[0] != value:
                self._seen[name] = (value, now)
            elif now - seen[1] >= self.stall:
                stalled.append(name)
        return stalled


def dump_all_threads(out: TextIO) -> None:
    """Every thread's stack via faulthandler: to `out` if it has a real fd, else to stderr."""
    target = out
    try:
        out.flush()
        out.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        target = sys.__stderr__
    if target is None:
        return
    faulthandler.dump_traceback(file=target, all_threads=True)
