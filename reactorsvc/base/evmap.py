"""fd → events and signal → events, with per-fd interest counts (libevent's evmap).

Several events may watch one fd; the backend sees only the union of their interests and is
called only when a per-fd count of readers, writers or close-watchers crosses 0↔1. A backend
error (closed fd, EPERM on a regular file, fd too large for select) propagates before any
state changes, so a failed add leaves nothing behind; an fd no process could have open (past
RLIMIT_NOFILE or a C int) is a ValueError naming `fd`. Not thread-safe: the base's lock is held.
"""

from __future__ import annotations

import errno
import resource

from .backends import Backend
from .flags import EV_CLOSED, EV_ET, EV_READ, EV_WRITE


def _raise_if_impossible_fd(fd: int, exc: Exception) -> None:
    """ValueError naming `fd` when the kernel refused an fd that cannot be open at all."""
    if isinstance(exc, OverflowError):
        raise ValueError(f"fd: {fd} is not a file descriptor (larger than a C int)") from None
    if exc.errno == errno.EBADF:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if limit != resource.RLIM_INFINITY and fd >= limit:
            raise ValueError(f"fd: {fd} is not below this process's fd limit "
                             f"(RLIMIT_NOFILE {limit})") from None


class FdSlot:
    """The events on one fd and how many of them want each kind of readiness."""

    __slots__ = ("events", "nread", "nwrite", "nclose", "et")

    def __init__(self) -> None:
        self.events: list = []
        self.nread = self.nwrite = self.nclose = 0
        self.et = False

    def mask(self) -> int:
        return ((EV_READ if self.nread else 0) | (EV_WRITE if self.nwrite else 0)
                | (EV_CLOSED if self.nclose else 0) | (EV_ET if self.et else 0))


class IoMap:
    """fd → FdSlot. `add`/`remove` return True when the backend's interest changed."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.slots: dict[int, FdSlot] = {}

    def add(self, ev) -> bool:
        fd, bits = ev._fd, ev._events
        slot = self.slots.get(fd)
        old = slot.mask() if slot is not None else 0
        if slot is not None and slot.events and slot.et != bool(bits & EV_ET):
            raise ValueError(f"fd {fd}: cannot mix edge-triggered and level-triggered events on one fd")
        new = 0
        if bits & EV_READ and not (slot and slot.nread):
            new |= EV_READ
        if bits & EV_WRITE and not (slot and slot.nwrite):
            new |= EV_WRITE
        if bits & EV_CLOSED and not (slot and slot.nclose):
            new |= EV_CLOSED
        if new:
            try:
                self.backend.add(fd, old, new | (bits & EV_ET))
            except (OSError, OverflowError) as exc:
                _raise_if_impossible_fd(fd, exc)
                raise
        if slot is None:
            slot = self.slots[fd] = FdSlot()
        slot.et = bool(bits & EV_ET)
        slot.nread += 1 if bits & EV_READ else 0
        slot.nwrite += 1 if bits & EV_WRITE else 0
        slot.nclose += 1 if bits & EV_CLOSED else 0
        slot.events.append(ev)
        return bool(new)

    def remove(self, ev) -> bool:
        fd, bits = ev._fd, ev._events
        slot = self.slots[fd]
        old = slot.mask()
        slot.events.remove(ev)
        gone = 0
        if bits & EV_READ:
            slot.nread -= 1
            gone |= 0 if slot.nread else EV_READ
        if bits & EV_WRITE:
            slot.nwrite -= 1
            gone |= 0 if slot.nwrite else EV_WRITE
        if bits & EV_CLOSED:
            slot.nclose -= 1
            gone |= 0 if slot.nclose else EV_CLOSED
        if not slot.events:
            del self.slots[fd]
        if gone:
            self.backend.delete(fd, old, gone)
        return bool(gone)

    def reregister(self, backend: Backend) -> None:
        """After fork: tell a fresh backend about every fd."""
        self.backend = backend
        for fd, slot in self.slots.items():
            backend.add(fd, 0, slot.mask())


class SignalMap:
    """signum → events."""

    def __init__(self) -> None:
        self.slots: dict[int, list] = {}

    def add(self, ev) -> bool:
        """Record ev; True when it is the first event for its signal."""
        events = self.slots.setdefault(ev._fd, [])
        events.append(ev)
        return len(events) == 1

    def remove(self, ev) -> bool:
        """Forget ev; True when it was the last event for its signal."""
        events = self.slots[ev._fd]
        events.remove(ev)
        if events:
            return False
        del self.slots[ev._fd]
        return True
