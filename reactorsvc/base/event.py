"""Event: one callback's interest in an fd, a signal and/or a timeout (libevent's struct event).

An Event is a handle; its state (added, timer, active) lives in slots the owning EventBase
reads and writes with its lock held. Every public method takes that lock, so any thread may
call them (see the thread contract in DESIGN.md); signal events only from the main thread.
"""

from __future__ import annotations

import math
from math import inf as _INF
import signal as _signal
from threading import get_ident as _get_ident
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ReactorError
from .config import check_int
from .flags import (_ALL_EVENT_BITS, EV_CLOSED, EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE)

if TYPE_CHECKING:
    from .eventbase import EventBase

Callback = Callable[[int, int, Any], Any]
_IO = EV_READ | EV_WRITE | EV_CLOSED
_ALL_PENDING = EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL | EV_CLOSED
_NSIG = getattr(_signal, "NSIG", 65)
_EventBase: type = type(None)  # set by eventbase.py once the class exists (a circular import)


class Event:
    """callback(fd, what, arg) runs in the base's loop thread when `events` happen.

    `what` holds the EV_* bits that fired. Without EV_PERSIST the event is deleted before its
    callback runs (so the callback may add it again); with EV_PERSIST it stays added.
    """

    __slots__ = ("_base", "_fd", "_events", "_callback", "_arg", "_priority", "_inserted",
                 "_timer", "_deadline", "_interval", "_active", "_res", "_ncalls", "_counted",
                 "_internal", "_freed", "_finalizing", "__weakref__")

    def __init__(self, base: EventBase, fd: int, events: int, callback: Callback, arg: Any = None) -> None:
        if not isinstance(base, _EventBase):
            raise TypeError(f"base must be an EventBase, not {type(base).__name__}")
        if type(fd) is not int:
            check_int(fd, "fd")
        if type(events) is not int:
            check_int(events, "events")
        if events & ~_ALL_EVENT_BITS or events < 0:
            raise ValueError(f"events: unknown bits {events & ~_ALL_EVENT_BITS:#x}")
        if events & EV_SIGNAL:
            if events & _IO:
                raise ValueError("events: EV_SIGNAL cannot be combined with EV_READ, EV_WRITE or EV_CLOSED")
            if not 0 < fd < _NSIG:
                raise ValueError(f"fd: {fd} is not a signal number (1..{_NSIG - 1})")
        elif events & _IO and fd < 0:
            raise ValueError(f"fd: an I/O event needs an fd >= 0, got {fd}")
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        base._check_usable()
        self._base = base
        self._fd = fd
        self._events = events
        self._callback = callback
        self._arg = arg
        self._priority = base._npriorities // 2
        self._inserted = False
        self._timer: list | None = None
        self._deadline = -1.0  # the timeout's time.monotonic() (read while _timer is set)
        self._interval: float | None = None
        self._active = False
        self._res = 0
        self._ncalls = 0
        self._counted = False
        self._internal = False
        self._freed = False
        self._finalizing = False

    @classmethod
    def timer(cls, base: EventBase, callback: Callback, arg: Any = None) -> Event:
        """A pure timer: fd -1, events 0 (libevent's evtimer_new)."""
        return cls(base, -1, 0, callback, arg)

    @classmethod
    def signal(cls, base: EventBase, signum: int, callback: Callback, arg: Any = None) -> Event:
        """A persistent signal event (libevent's evsignal_new); add/delete in the main thread."""
        return cls(base, signum, EV_SIGNAL | EV_PERSIST, callback, arg)

    base = property(lambda self: self._base, doc="The EventBase this event belongs to.")
    fd = property(lambda self: self._fd, doc="The fd (or signal number; -1 for timers).")
    events = property(lambda self: self._events, doc="The EV_* bits this event watches.")
    callback = property(lambda self: self._callback, doc="callback(fd, what, arg).")
    arg = property(lambda self: self._arg, doc="The third argument of the callback.")

    @property
    def priority(self) -> int:
        """Lower runs first. Settable, except while the event is active (ReactorError)."""
        return self._priority

    @priority.setter
    def priority(self, value: int) -> None:
        check_int(value, "priority")
        base = self._base
        with base._lock:
            self._check_alive()
            if not 0 <= value < base._npriorities:
                raise ValueError(f"priority must be in [0, {base._npriorities}), got {value}")
            if self._active:
                raise ReactorError("cannot change the priority of an active event")
            self._priority = value

    @property
    def deadline(self) -> float | None:
        """time.monotonic() of the pending timeout, or None. Thread-safe."""
        return self._deadline if self._timer is not None else None

    def _check_alive(self) -> None:
        if self._freed:
            raise ReactorError("event used after free()")
        self._base._check_usable()

    def add(self, timeout: float | None = None) -> None:
        """Make the event pending; with `timeout` (seconds) also (re)schedule its timeout.

        timeout=None keeps a pending timeout. Thread-safe; wakes the loop when the change
        matters to its wait. Raises the backend's OSError (closed fd, ...) leaving no state.
        """
        if timeout is not None and not (type(timeout) is float and 0.0 <= timeout < _INF):
            timeout = _check_timeout(timeout)
        base = self._base
        if self._freed or self._finalizing or base._freed or base._needs_reinit:
            self._check_alive()
            if self._finalizing:
                raise ReactorError("cannot add an event that is being finalized")
        if not base._locked:  # NOLOCK: single-threaded by contract, no other loop to wake
            base._add_locked(self, timeout)
            return
        lock = base._lock
        lock.acquire()
        try:
            if base._freed:  # freed by another thread since the check above
                self._check_alive()
            wake = base._add_locked(self, timeout)
        finally:
            lock.release()
        if wake:
            base._wake()

    def remove_timer(self) -> None:
        """Drop the pending timeout (and the persistent interval), keep the I/O interest."""
        base = self._base
        with base._lock:
            self._check_alive()
            wake = base._remove_timer_locked(self)
            self._interval = None
            base._recount_locked(self)
        if wake:
            base._wake()

    def delete(self, block: bool = True) -> None:
        """Make the event non-pending and non-active. Thread-safe.

        From another thread while its callback runs, waits for the callback to return unless
        `block` is False or the event has EV_FINALIZE; never waits in the loop thread.
        """
        base = self._base
        if not (self._inserted or self._active or self._timer is not None or self._freed
                or base._freed or base._needs_reinit) and (
                not base._locked or base._running == _get_ident()):
            # Nothing to undo (a closing connection deletes its idle events this way), and in
            # the loop thread no callback of this event can be starting meanwhile.
            return
        with base._lock:
            self._check_alive()
            wake = base._del_locked(self)
            if block:
                base._wait_callback_locked(self)
        if wake:
            base._wake()

    def activate(self, res: int, ncalls: int = 1) -> None:
        """Make the event active with `res` bits, as if they happened. Thread-safe."""
        if type(res) is not int:
            check_int(res, "res")
        if ncalls != 1:
            if check_int(ncalls, "ncalls") < 1:
                raise ValueError(f"ncalls must be >= 1, got {ncalls}")
            if not self._events & EV_SIGNAL:
                ncalls = 1  # libevent: the count means something for signal events only
        base = self._base
        if self._freed or base._freed or base._needs_reinit:
            self._check_alive()
        if not base._locked:  # NOLOCK: single-threaded by contract
            base._activate_locked(self, res, ncalls)
            return
        lock = base._lock
        lock.acquire()
        try:
            if base._freed:  # freed by another thread since the check above
                self._check_alive()
            wake = base._activate_locked(self, res, ncalls)
        finally:
            lock.release()
        # The lock block is written out here and in add(): one helper taking the operation
        # and *args costs more than the operation (hot path: see benchmarks/icount.py active).
        if wake:
            base._wake()

    def pending(self, what: int = _ALL_PENDING) -> int:
        """The bits of `what` the event is pending or active for. ReactorError after free()."""
        if self._freed:
            raise ReactorError("event used after free()")
        with self._base._lock:  # the loop thread rewrites _res (an object) as it runs
            return self._pending_bits() & what

    def _pending_bits(self) -> int:
        flags = 0
        if self._inserted:
            flags |= self._events & (_IO | EV_SIGNAL)
        if self._active:
            flags |= self._res
        if self._timer is not None:
            flags |= EV_TIMEOUT
        return flags

    def finalize(self, callback: Callable[[Event, Any], Any]) -> None:
        """Delete without waiting; callback(event, arg) runs in the loop once the event can
        never run again. The event must not be used afterwards (except by the finalizer)."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        base = self._base
        with base._lock:
            self._check_alive()
            if self._finalizing:
                raise ReactorError("finalize() called twice")
            wake = base._del_locked(self)
            self._finalizing = True
            wake |= base._defer_locked(callback, (self, self._arg))
        if wake:
            base._wake()

    def free(self) -> None:
        """Delete (blocking as delete() does) and retire the event: later use raises ReactorError."""
        if self._freed:
            raise ReactorError("event freed twice")
        self.delete()
        self._freed = True

    def __repr__(self) -> str:
        with self._base._lock:
            state = "freed" if self._freed else f"pending={self._pending_bits():#x}"
        return (f"<Event fd={self._fd} events={self._events:#x} {state} "
                f"priority={self._priority} callback={getattr(self._callback, '__qualname__', self._callback)}>")


def _check_timeout(timeout: object) -> float:
    if type(timeout) is bool or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0 or math.isinf(timeout):
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout!r}")
    return timeout
