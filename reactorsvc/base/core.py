"""BaseCore: the state of an EventBase and the lock-held bookkeeping of its events.

EventBase (eventbase.py) is BaseCore + Dispatcher (dispatch.py, the loop's phases) + the
public API. This class holds every slot of the base and the `_locked` mutators that Event's
methods and the loop call: register (`_add_locked`), unregister (`_del_locked`), activate,
(re)schedule a timeout, and the one wake-up (`_wake`). EventBase.__init__ sets the slots.

Lock and wake-up protocol (libevent's event_add_nolock_ and its notify result): a `_locked`
mutator changes state and returns wake: bool, whether a loop waiting in another thread must
see the change; the public method releases the lock, then calls `_wake()`, the one wake-up.

The compiled build (core.pxd) makes this a cdef class with typed slots. Free-threaded CPython
then has no per-object lock around them, so a slot read without the base lock from another
thread is either a C number or bool (`_running` is a thread id, 0 when no loop runs;
`_now_cache` a float, -1.0 when not cached; the counters), or an object written only once, in
EventBase.__init__ (`_deferred`, `_notifier`, `_lock`: lock.py's BaseLock in the compiled
build, an RLock in the pure one; the at-fork hook rewrites `_lock` in a child that has one
thread). Every other slot is read and written with the base lock held.
"""

from __future__ import annotations

from threading import get_ident
from time import monotonic
from typing import Any, Callable

from ..errors import ReactorError
from .event import Event
from .flags import EV_CLOSED, EV_FINALIZE, EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE
from .lifecycle import Finalizer
from .signals import SignalSource, _require_main_thread
from .timers import CommonTimeout

_IO = EV_READ | EV_WRITE | EV_CLOSED


class BaseCore:
    """An EventBase's slots and its lock-held event bookkeeping (see the module docstring)."""

    # Slots, not a __dict__: the loop reads and writes these on every pass, and slot access
    # is cheaper (−5 % instructions per chain callback, −7 % per active one: icount.py).
    __slots__ = ("method", "features", "n_callbacks", "n_iterations", "n_wakeups",
                 "_backend", "_flags", "_locked", "_cache_time", "_lock", "_cond", "_io",
                 "_sigmap", "_sigsrc", "_sig_ev", "_timers", "_npriorities", "_activeq",
                 "_nactive", "_deferred", "_nevents", "_running", "_current", "_waiters",
                 "_break", "_exit", "_continue", "_running_prio", "_got_break", "_got_exit",
                 "_now_cache", "_max_callbacks", "_max_interval", "_limit_prio", "_freed",
                 "_needs_reinit", "_notifier", "_notify_ev", "_exception_handler", "_sleeping",
                 "__weakref__")

    def _check_usable(self) -> None:
        if self._freed:
            raise ReactorError("EventBase used after free()")
        if self._needs_reinit:
            raise ReactorError("this EventBase was inherited across fork(): call reinit() in the child first")

    def _internal_event_locked(self, fd: int, callback: Callable) -> tuple[Event, bool]:
        """A persistent EV_READ event of the base's own (not counted); (event, wake)."""
        ev = Event(self, fd, EV_READ | EV_PERSIST, callback)
        ev._internal = True
        ev._priority = 0
        return ev, self._add_locked(ev, None)

    # -- event bookkeeping (lock held) ----------------------------------------------------

    def _recount_locked(self, ev: Event) -> None:
        counted = ev._inserted or ev._timer is not None
        if counted != ev._counted:
            ev._counted = counted
            if not ev._internal:
                self._nevents += 1 if counted else -1

    def _add_locked(self, ev: Event, timeout: float | None) -> bool:
        """Register ev (and its timeout); True when a sleeping loop must be woken: the
        caller calls _wake() after releasing the lock, so the loop does not wake only to
        block on it."""
        notify = False
        if ev._events & (_IO | EV_SIGNAL) and not ev._inserted:
            if ev._events & EV_SIGNAL:
                notify = self._signal_add_locked(ev)
            else:
                notify = self._io.add(ev)
            ev._inserted = True
        if timeout is not None:
            if ev._events & EV_PERSIST:
                ev._interval = timeout
            if ev._active and ev._res & EV_TIMEOUT:
                # Rescheduling a timeout that fired but has not run yet: that run is void.
                self._deactivate_locked(ev)
            # self._clock() and, below, self._recount_locked(ev), inlined: the two calls cost
            # 2.5 % of a timer's create + add + fire (benchmarks/icount.py, timers).
            now = self._now_cache
            if now < 0.0:
                now = monotonic()
            notify |= self._schedule_locked(ev, now + timeout, timeout)
        counted = ev._inserted or ev._timer is not None
        if counted != ev._counted:
            ev._counted = counted
            if not ev._internal:
                self._nevents += 1 if counted else -1
        return notify

    def _schedule_locked(self, ev: Event, deadline: float, timeout: float) -> bool:
        """(Re)schedule ev's timeout (a CommonTimeout goes to its FIFO); True when it became
        the earliest deadline. The caller recounts."""
        timers = self._timers
        if ev._timer is not None:
            timers.cancel(ev._timer)
        earliest = timers.next_deadline()
        queue = timeout.queue if type(timeout) is CommonTimeout else None
        ev._timer = timers.schedule(deadline, ev, queue)
        ev._deadline = deadline
        return earliest is None or deadline < earliest

    def _remove_timer_locked(self, ev: Event) -> bool:
        """Cancel ev's timeout; wake when it was the earliest deadline."""
        entry = ev._timer
        if entry is None:
            return False
        earliest = self._timers.next_deadline() == entry[0]
        self._timers.cancel(entry)
        ev._timer = None
        return earliest

    def _deactivate_locked(self, ev: Event) -> None:
        self._activeq[ev._priority].remove(ev)
        ev._active = False
        ev._res = 0
        self._nactive -= 1

    def _del_locked(self, ev: Event, keep_active: bool = False) -> bool:
        """Unregister ev; True when a sleeping loop must be woken (the last event or the
        earliest timer went away): the caller calls _wake() after releasing the lock."""
        if ev._inserted and ev._events & EV_SIGNAL:
            _require_main_thread("delete")
        earliest = self._remove_timer_locked(ev)
        if ev._active and not keep_active:
            self._deactivate_locked(ev)
        if ev._inserted:
            ev._inserted = False
            if ev._events & EV_SIGNAL:
                self._signal_del_locked(ev)
            else:
                self._io.remove(ev)
        ev._interval = None
        if not keep_active:
            ev._ncalls = 0  # a signal event's remaining runs are cancelled (libevent's pncalls)
        was_counted = ev._counted
        self._recount_locked(ev)
        return earliest or (was_counted and not self._nevents)

    def _activate_locked(self, ev: Event, res: int, ncalls: int = 1) -> bool:
        """Queue ev to run with `res`; True when a loop waiting in its backend must be woken
        (only while _sleeping: never from the loop thread, the hot case)."""
        if ev._finalizing:
            return False
        if ev._active:
            ev._res |= res
            ev._ncalls += ncalls if ev._events & EV_SIGNAL else 0
            return False
        if ev._priority < self._running_prio:
            self._continue = True  # a better priority pre-empts the queue now running
        try:
            queue = self._activeq[ev._priority]
        except IndexError:  # created before priority_init() lowered the count
            ev._priority = self._npriorities - 1
            queue = self._activeq[ev._priority]
        ev._active = True
        ev._res = res
        ev._ncalls = ncalls
        queue.append(ev)
        self._nactive += 1
        return self._sleeping

    def _wake(self) -> None:
        """The one wake-up: notify the loop if it runs in another thread (coalesced).

        Lock protocol: a `_locked` mutator returns whether its change matters to a waiting
        loop (wake: bool); only the public method calls this, after releasing the lock, so
        the woken loop does not block on the lock it still holds. Lock-free.
        """
        running = self._running
        if running and running != get_ident() and self._notifier is not None:
            self._notifier.notify()

    def _wait_callback_locked(self, ev: Event) -> None:
        """Block until ev's running callback returns (never in the loop thread)."""
        if self._current is not ev or self._running == get_ident() or ev._events & EV_FINALIZE:
            return
        if not self._locked:
            return
        self._waiters += 1
        try:
            while self._current is ev:
                self._cond.wait()
        finally:
            self._waiters -= 1

    def _defer_locked(self, fn: Callable, args: tuple) -> bool:
        """Queue a finalize() callback; wake: always (the loop must run it)."""
        self._deferred.append(Finalizer((fn, args)))
        return True

    def _clock(self) -> float:
        cached = self._now_cache
        return cached if cached >= 0.0 else monotonic()

    # -- signals ----------------------------------------------------------------------------

    def _signal_add_locked(self, ev: Event) -> bool:
        """Watch ev's signal; wake when the signal socket became a new fd for the backend."""
        if self._sigsrc is None:
            self._sigsrc = SignalSource()
        first = not self._sigmap.slots.get(ev._fd)
        if first:
            self._sigsrc.watch(ev._fd)  # main thread only: raises ReactorError elsewhere
        self._sigmap.add(ev)
        if self._sig_ev is not None:
            return False
        self._sig_ev, wake = self._internal_event_locked(self._sigsrc.fd, self._deliver_signals)
        return wake

    def _signal_del_locked(self, ev: Event) -> None:
        if self._sigmap.remove(ev):
            self._sigsrc.unwatch(ev._fd)

    def _deliver_signals(self, fd: int, what: int, arg: Any) -> None:
        with self._lock:
            for signum, count in self._sigsrc.drain().items():
                for ev in self._sigmap.slots.get(signum, ()):
                    self._activate_locked(ev, EV_SIGNAL, count)
