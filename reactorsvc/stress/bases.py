"""The bases of a stress run: each loops in its own thread, restarting after every break.

A StressBase owns an EventBase (3 priorities), one socketpair and EVENTS_PER_BASE events of
four kinds (index % 4), all with on_event as callback and their EventRecord as arg:
  TIMER      a pure timer, always added with a timeout;
  WRITE      EV_WRITE on a socket nobody fills (always ready), added with or without a timeout;
  READ_IDLE  EV_READ on a socket nobody writes to, always added with a timeout;
  PERSIST    a persistent timer (interval >= MIN_INTERVAL), not owed a fixed number of runs.
"""

from __future__ import annotations

import socket
import threading
from threading import get_ident

from reactorsvc import (
    EV_PERSIST,
    EV_READ,
    EV_TIMEOUT,
    EV_WRITE,
    EVENT_BASE_FLAG_IGNORE_ENV,
    EVLOOP_NO_EXIT_ON_EMPTY,
    Event,
    EventBase,
    EventConfig,
    supported_methods,
)

from .model import ARMED, EventRecord, LoopOwner, Violations, on_event

EVENTS_PER_BASE = 32
KINDS = ("timer", "write", "read_idle", "persist")
ACTIVATE_RES = {"timer": EV_TIMEOUT, "write": EV_WRITE, "read_idle": EV_READ, "persist": EV_TIMEOUT}
NPRIORITIES = 3
MIN_INTERVAL = 0.002  # a persistent timer with interval 0 would spin its loop


def make_base(backend: str | None) -> EventBase:
    """An EventBase on exactly `backend` (environment ignored), or the default choice."""
    cfg = EventConfig()
    if backend is not None:
        for other in supported_methods():
            if other != backend:
                cfg.avoid_method(other)
        cfg.set_flag(EVENT_BASE_FLAG_IGNORE_ENV)
    return EventBase(cfg)


class StressBase:
    """One base, its events and its loop thread. Thread-safety: `post_received` runs in the
    loop thread; everything else is called by the run's main thread."""

    def __init__(self, index: int, backend: str | None, nthreads: int, violations: Violations) -> None:
        self.index = index
        self.violations = violations
        self.owner = LoopOwner()
        self.base = make_base(backend)
        try:
            self.base.priority_init(NPRIORITIES)  # before the events: they take npriorities // 2
            self.writable, self.silent = socket.socketpair()
        except BaseException:
            self.base.free()
            raise
        self.records = [self._make_record(i) for i in range(EVENTS_PER_BASE)]
        self.posted = [0] * nthreads      # written by hammer i only
        self.delivered = [0] * nthreads   # written by the loop thread only
        self.restarts = 0
        self._stop = threading.Event()
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"stress-base-{index}", daemon=True)

    def _make_record(self, i: int) -> EventRecord:
        kind = KINDS[i % len(KINDS)]
        rec = EventRecord(f"base{self.index}.{kind}{i}", kind, self.owner, self.violations)
        if kind == "write":
            rec.ev = Event(self.base, self.writable.fileno(), EV_WRITE, on_event, rec)
        elif kind == "read_idle":
            rec.ev = Event(self.base, self.silent.fileno(), EV_READ, on_event, rec)
        else:
            rec.ev = Event(self.base, -1, EV_PERSIST if kind == "persist" else 0, on_event, rec)
        return rec

    def start(self) -> None:
        """Start the loop thread; return once callbacks can tell it is their thread."""
        self.thread.start()
        if not self._started.wait(5.0):
            raise RuntimeError(f"stress base {self.index}: loop thread did not start")

    def _run(self) -> None:
        self.owner.ident = get_ident()
        self._started.set()
        base = self.base
        while True:
            try:
                rc = base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
            except Exception as exc:  # noqa: BLE001 -- any escape from loop() is a finding
                self.violations.add("loop-raised", f"base {self.index}: {exc!r}")
                return
            if rc != 0:
                self.violations.add("loop-result", f"base {self.index}: loop() returned {rc} "
                                    "with EVLOOP_NO_EXIT_ON_EMPTY")
            elif not (base.got_break() or base.got_exit()):
                self.violations.add("loop-result", f"base {self.index}: loop() returned 0 "
                                    "without a break or exit")
            if self._stop.is_set():
                return
            self.restarts += 1

    def post_received(self, producer: int, seq: int) -> None:
        """call_soon_threadsafe target: FIFO per producer, in the loop thread."""
        if get_ident() != self.owner.ident:
            self.violations.add("wrong-thread", f"base {self.index}: posted call ran in thread "
                                f"{get_ident()}")
        expected = self.delivered[producer] + 1
        if seq != expected:
            self.violations.add("post-order", f"base {self.index}: producer {producer} sent "
                                f"#{seq}, expected #{expected}")
        self.delivered[producer] = seq

    def owed(self) -> int:
        """Non-persistent events still owed a run, plus posted calls not yet delivered."""
        armed = sum(1 for r in self.records if not r.persist and r.state == ARMED)
        return armed + sum(self.posted) - sum(self.delivered)

    def delete_all(self) -> None:
        """Delete every event (blocking) from a non-loop thread; check nothing is left."""
        for rec in self.records:
            rec.delete_blocking()
        if self.base.num_events():
            self.violations.add("events-left", f"base {self.index}: num_events() is "
                                f"{self.base.num_events()} after deleting every event")

    def probe_wakeup(self, timeout: float) -> bool:
        """An idle loop must run a call_soon_threadsafe() call promptly (a stuck notifier
        would leave it asleep for good)."""
        probe = threading.Event()
        self.base.call_soon_threadsafe(probe.set)
        if not probe.wait(timeout):
            self.violations.add("lost-wakeup", f"base {self.index}: an idle loop did not run a "
                                f"call_soon_threadsafe() call within {timeout:g}s")
            return False
        return True

    def stop_loop(self, join_timeout: float) -> bool:
        """Make the loop thread end; False if it did not within join_timeout."""
        self._stop.set()
        self.base.loopbreak()
        self.thread.join(join_timeout)
        return not self.thread.is_alive()

    def free(self) -> None:
        self.base.free()
        self.writable.close()
        self.silent.close()
