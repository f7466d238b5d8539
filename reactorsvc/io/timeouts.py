"""A Connection's timers: read/write/idle timeouts on ONE lazily re-armed timer, and
``call_later`` (the timers a protocol asks for through ``get_extra_info("call_later")``).

The timeouts cost nothing per read or write beyond storing a timestamp: the shared timer is
armed for the earliest deadline that can apply; when it fires it recomputes the deadlines from
the timestamps and either fails the connection with a TimeoutError or re-arms itself for the
next one. It is re-armed early only when a new, earlier deadline appears (output starts waiting
under a write timeout; reading resumes under a read timeout).

Meaning (libevent's bufferevent timeouts, plus idle):
- read_timeout: nothing received for that long while reading is enabled (not paused, not at EOF);
- write_timeout: output waiting in the buffer and no byte of it sent for that long;
- idle_timeout: nothing sent nor received for that long.
Everything here runs in the connection's loop thread (mixin of Connection; its slots are
ConnectionState's, state.py).
"""

from __future__ import annotations

import errno
import math
from time import monotonic
from typing import Any, Callable

from .._checks import check_seconds, check_timeout  # check_timeout: re-exported
from ..base import Event

__all__ = ["TimerHandle", "check_timeout"]


class TimerHandle:
    """What ``call_later`` returns: ``cancel()`` stops the call if it has not run yet.

    The call runs once, in the connection's loop thread; if it raises, the connection closes
    with that exception (as a protocol callback that raises). Pending calls are cancelled when
    the connection's ``connection_lost`` has run. Loop thread only.
    """

    __slots__ = ("_conn", "_fn", "_event")

    def __init__(self, conn: Any, fn: Callable[[], Any]) -> None:
        self._conn = conn
        self._fn = fn
        self._event: Event | None = None

    def cancel(self) -> None:
        """Stop the call; no-op if it already ran or was cancelled."""
        event = self._event
        if event is not None:
            self._event = None
            event.delete()
            self._conn._handles.discard(self)
            self._conn = self._fn = None

    def cancelled(self) -> bool:
        """True once cancelled or run."""
        return self._event is None

    def _run(self, fd: int, what: int, arg: Any) -> None:
        conn, fn = self._conn, self._fn
        if conn is None:
            return
        self._event = None
        conn._handles.discard(self)
        self._conn = self._fn = None
        try:
            fn()
        except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
            conn._protocol_error(exc, "a call_later() callback failed")


class TimeoutsMixin:
    """The timer half of Connection (see the module docstring)."""

    __slots__ = ()

    def _init_timeouts(self, idle: object, read: object, write: object) -> None:
        self._idle_timeout = check_timeout(idle, "idle_timeout")
        self._read_timeout = check_timeout(read, "read_timeout")
        self._write_timeout = check_timeout(write, "write_timeout")
        self._timed = not (self._idle_timeout is None and self._read_timeout is None
                           and self._write_timeout is None)
        self._timer = Event.timer(self._base, self._on_timer) if self._timed else None
        self._last_read = self._last_write = self._write_progress = 0.0
        self._handles: set[TimerHandle] = set()

    def _start_timeouts(self) -> None:
        """The connection is up: every timeout counts from now."""
        if self._timed:
            self._last_read = self._last_write = self._write_progress = monotonic()
            self._arm_timer()

    def _next_deadline(self) -> float | None:
        deadline = math.inf
        if self._idle_timeout is not None:
            deadline = max(self._last_read, self._last_write) + self._idle_timeout
        if self._read_timeout is not None and self._reading_enabled():
            deadline = min(deadline, self._last_read + self._read_timeout)
        if self._write_timeout is not None and len(self._wbuf):
            deadline = min(deadline, self._write_progress + self._write_timeout)
        return None if deadline == math.inf else deadline

    def _arm_timer(self) -> None:
        """Make the shared timer fire no later than the earliest deadline that applies."""
        timer = self._timer
        if timer is None or self._lost:
            return
        deadline = self._next_deadline()
        if deadline is None:
            timer.delete()
            return
        current = timer.deadline
        if current is not None and current <= deadline:
            return  # it fires early enough, then re-arms itself
        # Relative to the base's cached clock, so the timer's deadline is exactly `deadline`.
        timer.add(max(0.0, deadline - self._base.now()))

    def _expired(self, now: float) -> TimeoutError | None:
        if (self._write_timeout is not None and len(self._wbuf)
                and now >= self._write_progress + self._write_timeout):
            return TimeoutError(errno.ETIMEDOUT, f"write timeout: no output sent for "
                                f"{self._write_timeout:g} s while {len(self._wbuf)} bytes wait")
        if (self._read_timeout is not None and self._reading_enabled()
                and now >= self._last_read + self._read_timeout):
            return TimeoutError(errno.ETIMEDOUT,
                                f"read timeout: nothing received for {self._read_timeout:g} s")
        if (self._idle_timeout is not None
                and now >= max(self._last_read, self._last_write) + self._idle_timeout):
            return TimeoutError(errno.ETIMEDOUT, f"idle timeout: nothing sent or received for "
                                f"{self._idle_timeout:g} s")
        return None

    def _on_timer(self, fd: int, what: int, arg: Any) -> None:
        if self._lost:
            return
        exc = self._expired(monotonic())
        if exc is not None:
            self._fatal_error(exc, "timed out")
        else:
            self._arm_timer()

    def call_later(self, delay: float, fn: Callable[[], Any]) -> TimerHandle:
        """Run ``fn()`` in this connection's loop thread after ``delay`` seconds.

        Also reachable as ``get_extra_info("call_later")``. Returns a handle with
        ``cancel()``. After connection_lost the call is cancelled (a call made then returns
        an already-cancelled handle). Loop thread only.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        delay = check_seconds(delay, "delay")
        handle = TimerHandle(self, fn)
        if self._sock_closed:
            handle._conn = handle._fn = None
            return handle
        handle._event = Event.timer(self._base, handle._run)
        handle._event.add(delay)
        self._handles.add(handle)
        return handle

    def _cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.delete()
        for handle in list(self._handles):
            handle.cancel()
