"""EventBase: owns a backend, the evmaps, the timers, the notifier and the active queues.

Phase order of one loop iteration (written once, here):
  1. stop if loopexit()/loopbreak() was requested;
  2. compute the wait: 0 if anything is active or deferred (or EVLOOP_NONBLOCK), else until
     the earliest deadline, else forever; return 1 if nothing is added or active;
  3. wait in the backend, with the base lock released and the time cache cleared;
  4. cache now(); move the ready fds' events to the active queues;
  5. move expired timers to the active queues;
  6. run the active callbacks, lowest priority number first, lock released around each
     (after a queue with non-internal callbacks, lower queues wait); then deferred calls;
  7. EVLOOP_ONCE / EVLOOP_NONBLOCK decide whether to go round again.

Thread contract: every public method may be called from any thread (unless the base was
made with EVENT_BASE_FLAG_NOLOCK); calls that change what a sleeping loop waits for wake it
through the notifier. Methods ending in `_locked` expect the base lock held.

The base's slots and its `_locked` event bookkeeping (with the lock and wake-up protocol) are
in core.py (BaseCore); the loop's phases in dispatch.py (Dispatcher); reinit()/free() in
lifecycle.py; error reports in reporting.py. EventBase is their composition plus this API.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from threading import get_ident
from time import monotonic
from typing import Any, Callable, TextIO

import structlog

from ..errors import ReactorError
from . import introspect
from .backends import choose_backend
from .config import EventConfig, check_int, check_seconds
from . import event as _event_module
from .event import Event, _check_timeout
from .evmap import IoMap, SignalMap
from .flags import (_ALL_LOOP_FLAGS, EV_CLOSED, EV_PERSIST, EV_READ, EV_SIGNAL,
                    EV_TIMEOUT, EV_WRITE, EVENT_BASE_FLAG_IGNORE_ENV, EVENT_BASE_FLAG_NO_CACHE_TIME,
                    EVENT_BASE_FLAG_NOLOCK)
from .dispatch import Dispatcher
from .lifecycle import Lifecycle, live_bases
from .lock import new_lock
from .notify import Notifier
from .reporting import Reporting
from .signals import SignalSource
from .timers import TimerHeap

_log = structlog.get_logger("reactorsvc.base")
_IO = EV_READ | EV_WRITE | EV_CLOSED
_MAX_PRIORITIES = 256


class EventBase(Dispatcher, Lifecycle, Reporting):
    """A reactor: register Events, then loop() dispatches their callbacks. See module doc."""

    __slots__ = ()  # BaseCore holds them

    def __init__(self, config: EventConfig | None = None) -> None:
        if config is None:
            config = EventConfig()
        elif not isinstance(config, EventConfig):
            raise TypeError(f"config must be an EventConfig or None, not {type(config).__name__}")
        flags = config.flags
        backend = choose_backend(config.avoided, config.required_features,
                                 bool(flags & EVENT_BASE_FLAG_IGNORE_ENV))
        self._backend = backend
        self.method: str = backend.name
        self.features: int = backend.features
        self._flags = flags
        self._locked = not flags & EVENT_BASE_FLAG_NOLOCK
        self._cache_time = not flags & EVENT_BASE_FLAG_NO_CACHE_TIME
        self._lock = new_lock()
        self._cond = threading.Condition(self._lock)
        self._io = IoMap(backend)
        self._sigmap = SignalMap()
        self._sigsrc: SignalSource | None = None
        self._sig_ev: Event | None = None
        self._timers = TimerHeap()
        self._npriorities = 1
        self._activeq: list[deque] = [deque()]
        self._nactive = 0
        self._deferred: deque = deque()
        self._nevents = 0
        self._running = 0  # the loop thread's get_ident() while loop() runs, else 0
        # True while the loop waits in the backend with the lock released: set and cleared
        # by the loop thread with the lock held, read by mutators holding it.
        self._sleeping = False
        self._current: Event | None = None
        self._waiters = 0
        self._break = self._exit = self._continue = False
        self._running_prio = -1  # the priority of the queue being run; -1 between passes
        self._got_break = self._got_exit = False
        self._now_cache = -1.0  # now() cached for this pass; -1.0: not cached
        self._max_callbacks = config.max_dispatch_callbacks
        self._max_interval = config.max_dispatch_interval
        self._limit_prio = config.limit_callbacks_after_prio
        self._freed = False
        self._needs_reinit = False
        self.n_callbacks = self.n_iterations = self.n_wakeups = 0
        self._notifier: Notifier | None = None
        self._notify_ev: Event | None = None
        self._exception_handler: Callable[[EventBase, dict], Any] | None = None
        if self._locked:
            self._make_notifiable()
        live_bases.add(self)
        if not flags & EVENT_BASE_FLAG_IGNORE_ENV and "EVENT_SHOW_METHOD" in os.environ:
            _log.info("event_base_method", method=self.method)

    # -- construction helpers -------------------------------------------------------------

    def _make_notifiable(self) -> None:
        # After fork, reinit() renews the notifier's fds in place: the object stays the one
        # _wake() reads without the lock (core.py's module docstring).
        if self._notifier is None:
            self._notifier = Notifier()
        else:
            self._notifier.reopen()
        with self._lock:  # no loop runs yet (construction, reinit): nothing to wake
            self._notify_ev, _ = self._internal_event_locked(self._notifier.read_fd,
                                                             self._drain_notifier)

    def _drain_notifier(self, fd: int, what: int, arg: Any) -> None:
        self.n_wakeups += 1
        self._notifier.drain()

    def __enter__(self) -> EventBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __repr__(self) -> str:
        return f"<EventBase method={self.method} events={self._nevents} active={self._nactive}>"

    # -- the loop -----------------------------------------------------------------------------

    def loop(self, flags: int = 0) -> int:
        """Run the event loop in the calling thread (see the module docstring for one pass).

        Returns 0 when stopped by loopexit/loopbreak or by EVLOOP_ONCE/NONBLOCK, 1 when no
        events are left. ReactorError if this base's loop already runs (in any thread).
        """
        check_int(flags, "flags")
        if flags & ~_ALL_LOOP_FLAGS or flags < 0:
            raise ValueError(f"flags: unknown loop flags {flags & ~_ALL_LOOP_FLAGS:#x}")
        with self._lock:
            self._check_usable()
            if self._running != 0:
                raise ReactorError("loop() is already running for this EventBase (reentrant or "
                                   "concurrent call)")
            self._running = get_ident()
            self._got_break = self._got_exit = False
            try:
                return self._run_locked(flags)
            finally:
                # A break/exit in the last callback of an EVLOOP_ONCE/NONBLOCK pass ends the
                # loop before the next pass sees it: it still describes this loop().
                self._got_break = self._got_break or self._break
                self._got_exit = self._got_exit or self._exit
                self._running = 0
                self._now_cache = -1.0
                self._break = self._exit = self._continue = False

    def dispatch(self) -> int:
        """loop(0)."""
        return self.loop(0)

    def loopexit(self, delay: float | None = None) -> None:
        """Exit after the pass in which `delay` (None/0: now) expires has run its callbacks.

        Thread-safe. Without a delay while the loop is not running, the next loop() returns
        at once. A delay is a timer like any other: it keeps loop() from returning 1.
        """
        if delay is not None:
            delay = check_seconds(delay, "delay")
        if not delay:
            with self._lock:
                self._check_usable()
                self._exit = True
            self._wake()
            return
        self.once(-1, EV_TIMEOUT, self._loopexit_cb, None, delay)

    def _loopexit_cb(self, fd: int, what: int, arg: Any) -> None:
        with self._lock:
            self._exit = True

    def loopbreak(self) -> None:
        """Exit right after the running callback. Thread-safe; remembered if not running."""
        with self._lock:
            self._check_usable()
            self._break = True
        self._wake()

    def loopcontinue(self) -> None:
        """Stop running active callbacks and poll again (from a callback; otherwise no-op)."""
        with self._lock:
            self._check_usable()
            if self._running != 0:
                self._continue = True

    def is_closed(self) -> bool:
        """True once free() has run: every later use raises ReactorError. Any thread, never
        blocks; a closed base never reopens, so a True answer stays true."""
        return self._freed

    def is_running(self) -> bool:
        """True while loop() runs, in whichever thread. Any thread, never blocks; from another
        thread the answer may be stale by the time it is used."""
        return self._running != 0

    def in_loop_thread(self) -> bool:
        """True when called from inside this base's running loop() (its callbacks, in its
        thread). Any thread, never blocks; the answer cannot change under the caller, since
        only the loop's own thread can make it true or false."""
        return self._running == get_ident()

    def got_exit(self) -> bool:
        """Whether the last loop() ended through loopexit()."""
        return self._got_exit

    def got_break(self) -> bool:
        """Whether the last loop() ended through loopbreak()."""
        return self._got_break

    def priority_init(self, npriorities: int) -> None:
        """Use `npriorities` (1..256) active queues; ReactorError while events are active."""
        check_int(npriorities, "npriorities")
        if not 1 <= npriorities <= _MAX_PRIORITIES:
            raise ValueError(f"npriorities must be in [1, {_MAX_PRIORITIES}], got {npriorities}")
        with self._lock:
            self._check_usable()
            if self._nactive or self._running != 0:
                raise ReactorError("priority_init() while events are active or the loop runs")
            self._npriorities = npriorities
            self._activeq = [deque() for _ in range(npriorities)]

    def once(self, fd: int, events: int, callback: Callable, arg: Any = None,
             timeout: float | None = None) -> None:
        """Run callback(fd, what, arg) once when `events` happen or `timeout` expires.

        With only EV_TIMEOUT and timeout None or 0, it runs on the next pass. Thread-safe.
        """
        check_int(events, "events")
        if events & (EV_SIGNAL | EV_PERSIST):
            raise ValueError("events: once() does not take EV_SIGNAL or EV_PERSIST")
        if not events & (EV_TIMEOUT | _IO):
            raise ValueError(f"events: once() needs EV_TIMEOUT or an I/O bit (EV_READ, EV_WRITE, "
                             f"EV_CLOSED), got {events:#x}")
        if timeout is not None:
            timeout = _check_timeout(timeout)
        ev = Event(self, fd, events, callback, arg)
        with self._lock:
            self._check_usable()
            if not events & _IO and not timeout:
                # A pure timeout of None or 0 runs on the next pass (event_base_once, NULL tv);
                # with I/O, a 0 timeout is a timer like add(0)'s, so a ready fd adds its bits.
                wake = self._activate_locked(ev, EV_TIMEOUT)
            else:
                wake = self._add_locked(ev, timeout)
        if wake:
            self._wake()

    def init_common_timeout(self, duration: float) -> float:
        """A timeout value (a float subclass) whose events share one FIFO: O(1) add/delete."""
        duration = check_seconds(duration, "duration")
        with self._lock:
            self._check_usable()
            return self._timers.common_timeout(duration)

    def now(self) -> float:
        """time.monotonic() cached for the current pass (live with NO_CACHE_TIME). Thread-safe."""
        cached = self._now_cache
        return cached if cached >= 0.0 else monotonic()

    def update_cache_time(self) -> None:
        """Refresh the cached now() while the loop runs."""
        with self._lock:
            if self._running != 0 and self._cache_time:
                self._now_cache = monotonic()

    def call_soon(self, fn: Callable, *args: Any) -> None:
        """From the loop thread: run fn(*args) in this or the next pass, FIFO."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if self._freed or self._needs_reinit:
            self._check_usable()
        self._deferred.append((fn, args))

    def call_soon_threadsafe(self, fn: Callable, *args: Any) -> None:
        """From any thread: run fn(*args) in the loop thread soon; wakes a sleeping loop.

        FIFO per producer. Never blocks. Raises ReactorError on a freed base.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if self._freed or self._needs_reinit:
            self._check_usable()
        # Append before _wake() reads _running: a loop that starts now will see the item.
        # (Not _sleeping: without the lock, a loop about to wait could miss both.)
        self._deferred.append((fn, args))
        self._wake()

    def num_events(self) -> int:
        """Events added (pending on an fd, signal or timeout); internal ones not counted."""
        return self._nevents

    def foreach_event(self, fn: Callable[[Event], Any]) -> None:
        """fn(event) for each added or active event; stops early if fn returns a true value."""
        with self._lock:
            self._check_usable()
            events = introspect.user_events(self)
        for ev in events:
            if fn(ev):
                return

    def dump_events(self, file: TextIO) -> None:
        """Write a human-readable list of added and active events to a text file."""
        with self._lock:
            self._check_usable()
            introspect.dump(self, file)

    def counters(self) -> dict:
        """Loop statistics: callbacks run, passes, wake-ups drained/sent/coalesced."""
        n = self._notifier
        return {"callbacks": self.n_callbacks, "iterations": self.n_iterations,
                "wakeups": self.n_wakeups, "wakeups_sent": n.sent if n else 0,
                "wakeups_coalesced": n.coalesced if n else 0}


_event_module._EventBase = EventBase  # Event's isinstance check, without a circular import
