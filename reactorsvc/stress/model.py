"""What the reactor owes each event of a stress run, and the list of broken promises.

Per-event state machine (an EventRecord, guarded by its `elock`):

  IDLE     nothing owed: a callback now is a spurious or second run;
  ARMED    one run owed (add() or activate()); the callback consumes it and goes IDLE, unless
           the event is pending again when it looks (re-armed after the loop dequeued it, so
           a second run is owed);
  MAYBE    a non-blocking delete() cancelled it, but a run the loop had already dequeued may
           still arrive, once;
  DELETED  a blocking delete() returned: no callback may start until the next add/activate.

Hammer threads serialise their operations on one event with `oplock`, which the callback
never takes: a blocking delete() can then wait for the callback without a lock-order
deadlock (libevent#512), and its bookkeeping lands before another hammer touches the event.
The callback reads `Event.pending()` under `elock`; only the loop thread (which is running
the callback) or a hammer holding `elock` can change it then, except a concurrent blocking
delete, whose own bookkeeping comes after and settles the state either way.
"""

from __future__ import annotations

import threading
from collections import Counter
from threading import get_ident
from typing import Any

from reactorsvc import Event

IDLE, ARMED, MAYBE, DELETED = "idle", "armed", "maybe", "deleted"


class Violations:
    """Thread-safe tally of broken promises; keeps the first `keep` details."""

    def __init__(self, keep: int = 20) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.details: list[str] = []
        self._keep = keep

    def add(self, kind: str, detail: str) -> None:
        with self._lock:
            self.counts[kind] += 1
            if len(self.details) < self._keep:
                self.details.append(f"{kind}: {detail}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class LoopOwner:
    """The thread a base's callbacks must run in (set by that thread before it loops)."""

    ident: int | None = None


class EventRecord:
    """One Event under test and what it is owed. Hammer methods are thread-safe; `fired`
    is the event's callback body and runs in the loop thread."""

    def __init__(self, name: str, kind: str, owner: LoopOwner, violations: Violations) -> None:
        self.name = name
        self.kind = kind
        self.persist = kind == "persist"
        self.owner = owner
        self.violations = violations
        self.ev: Event | None = None
        self.elock = threading.Lock()
        self.oplock = threading.Lock()
        self.state = IDLE
        self.inflight = 0
        self.tally: Counter[str] = Counter()

    # -- hammer side: oplock, then elock around the reactor call and the bookkeeping --------

    def add(self, timeout: float | None) -> None:
        with self.oplock, self.elock:
            self.ev.add(timeout)
            self._arm_locked()

    def activate(self, res: int) -> None:
        with self.oplock, self.elock:
            self.ev.activate(res)
            self._arm_locked()

    def delete_nonblocking(self) -> None:
        with self.oplock, self.elock:
            self.ev.delete(block=False)
            if self.state == ARMED:
                self.tally["cancelled"] += 1
                self.state = MAYBE

    def delete_blocking(self) -> None:
        # Not under elock: the callback we may wait for takes it.
        with self.oplock:
            self.ev.delete()
            with self.elock:
                if self.state == ARMED:
                    self.tally["cancelled"] += 1
                self.state = DELETED

    def set_priority(self, priority: int) -> bool:
        """Change the priority if the event is idle (never active); False if it is armed."""
        with self.oplock, self.elock:
            if self.state == ARMED:
                return False
            self.ev.priority = priority
            return True

    def _arm_locked(self) -> None:
        if self.state == ARMED:
            self.tally["readded"] += 1
        else:
            self.tally["armed"] += 1
            self.state = ARMED

    # -- loop side ------------------------------------------------------------------------

    def fired(self, what: int) -> None:
        """The callback: check the thread, overlap and state; consume what was owed."""
        if get_ident() != self.owner.ident:
            self.violations.add("wrong-thread", f"{self.name} ran in thread {get_ident()}, "
                                f"its loop runs in {self.owner.ident}")
        with self.elock:
            self.inflight += 1
            if self.inflight != 1:
                self.violations.add("concurrent", f"{self.name}: {self.inflight} runs at once")
            self._consume_locked()
        with self.elock:
            self.inflight -= 1

    def _consume_locked(self) -> None:
        state = self.state
        if state == ARMED:
            if self.ev.pending():
                self.tally["refired"] += 1  # re-armed after dequeue: another run is owed
            else:
                self.tally["fired"] += 1
                self.state = IDLE
        elif state == MAYBE:
            self.tally["late"] += 1
            self.state = IDLE
        elif state == DELETED:
            self.violations.add("after-delete", f"{self.name}: callback started after a "
                                "blocking delete() returned")
        else:
            self.violations.add("unowed-run", f"{self.name}: callback ran but no run was owed "
                                "(fired twice for one add?)")


def on_event(fd: int, what: int, rec: Any) -> None:
    """Event callback of every stress event: arg is its EventRecord."""
    rec.fired(what)
