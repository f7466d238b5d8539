"""EventBase's lifecycle: reinit() after fork, free(), and the at-fork hook (a mixin).

After os.fork() the child shares the parent's epoll set, eventfd and signal socketpair, and
any lock a parent thread held stays held forever. The at-fork hook marks every live base so
that using it raises ReactorError until reinit() has made fresh kernel objects.
"""

from __future__ import annotations

import os
import threading
import weakref
from threading import get_ident

import structlog

from ..errors import ReactorError
from . import introspect
from .lock import new_lock
from .signals import SignalSource

_log = structlog.get_logger("reactorsvc.base")
live_bases: weakref.WeakSet = weakref.WeakSet()


class Finalizer(tuple):
    """A deferred finalize() callback: still run when the base is freed."""


class Lifecycle:
    """reinit() and free(); mixed into EventBase."""

    __slots__ = ()

    def reinit(self) -> None:
        """After os.fork(), in the child: new kernel objects for the backend, the notifier and
        signals, every added event registered again. Also allowed (and harmless) elsewhere."""
        with self._lock:
            if self._freed:
                raise ReactorError("EventBase used after free()")
            if self._running != 0 and self._running != get_ident():
                raise ReactorError("reinit() while the loop runs in another thread")
            self._needs_reinit = False
            if self._backend.need_reinit:
                self._backend.close()
                self._backend = type(self._backend)()
                self._io.reregister(self._backend)
            if self._notify_ev is not None:
                self._del_locked(self._notify_ev)
                self._make_notifiable()  # new fds for the same notifier
            if self._sigsrc is not None:
                self._renew_signals_locked()

    def _renew_signals_locked(self) -> None:
        signums = list(self._sigmap.slots)
        old = self._sigsrc
        self._del_locked(self._sig_ev)
        for signum in signums:
            old.unwatch(signum)
        old.close()
        self._sigsrc = SignalSource()
        for signum in signums:
            self._sigsrc.watch(signum)
        self._sig_ev, _ = self._internal_event_locked(self._sigsrc.fd, self._deliver_signals)

    def free(self) -> None:
        """Delete every event, close every fd the base opened; later use raises ReactorError.

        Pending finalize() callbacks run first. ReactorError while the loop runs. Idempotent.
        """
        with self._lock:
            if self._freed:
                return
            if self._running != 0:
                raise ReactorError("cannot free an EventBase while its loop runs")
            if self._sigmap.slots and threading.current_thread() is not threading.main_thread():
                raise ReactorError("free a base with signal events in the main thread (Python "
                                   "restores signal handlers only there)")
            finalizers = [item for item in self._deferred if type(item) is Finalizer]
            self._deferred.clear()
        for fn, args in finalizers:
            try:
                fn(*args)
            except Exception as exc:
                self._report_call_error(fn, exc, "finalize() callback failed")
        with self._lock:
            for ev in introspect.all_events(self):
                self._del_locked(ev)
            self._timers.clear()
            self._backend.close()
            if self._notifier is not None:
                self._notifier.close()
            if self._sigsrc is not None:
                self._sigsrc.close()
            self._freed = True
            live_bases.discard(self)



def _after_fork_in_child() -> None:
    """Mark every base: the child must reinit() before use. Locks held by threads that do
    not exist in the child are replaced so reinit() cannot deadlock."""
    me = get_ident()
    for base in list(live_bases):
        if base._freed:
            continue
        base._needs_reinit = True
        if base._running != me:
            base._running = 0
            base._sleeping = False
            base._current = None
            base._waiters = 0
            base._lock = new_lock()
            base._cond = threading.Condition(base._lock)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
