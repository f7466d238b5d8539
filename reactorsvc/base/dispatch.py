"""The loop's phases: Dispatcher, BaseCore's subclass and EventBase's base (the phase order is
in eventbase.py's docstring).

This is the hot path: attribute lookups are hoisted into locals, activation is inlined, and
per-event work allocates nothing beyond what the backend returns.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from .core import BaseCore
from .flags import EV_PERSIST, EV_TIMEOUT, EVLOOP_NO_EXIT_ON_EMPTY, EVLOOP_NONBLOCK, EVLOOP_ONCE

_NO_PRIO = -1  # no queue is running: no activation pre-empts anything


class Dispatcher(BaseCore):
    """loop() and its phases. Every method here runs in the loop thread with the lock held."""

    __slots__ = ()

    def _run_locked(self, flags: int) -> int:
        once = flags & EVLOOP_ONCE
        nonblock = flags & EVLOOP_NONBLOCK
        exit_on_empty = not flags & EVLOOP_NO_EXIT_ON_EMPTY
        timers = self._timers
        heap = timers._heap          # compaction rebuilds it in place: the alias stays valid
        slots = self._io.slots
        lock = self._lock
        locked = self._locked
        cache_time = self._cache_time
        activeq = self._activeq      # priority_init() refuses to run while the loop does
        # One priority and no dispatch limits: the common case gets a leaner callback loop.
        simple = len(activeq) == 1 and self._max_callbacks is None and self._max_interval is None
        while True:
            # 1. stop if asked to
            self._continue = False
            if self._exit:
                self._got_exit = True
                return 0
            if self._break:
                self._got_break = True
                return 0
            # 2. how long to wait; nothing left: done
            busy = self._nactive or self._deferred
            if exit_on_empty and not busy and not self._nevents:
                return 1
            if busy or nonblock:
                timeout = 0.0
            elif heap:
                deadline = timers.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - monotonic())
                # The kernel call has a limit (epoll/poll: INT_MAX ms): past it, wake early
                # and wait again, as libevent clamps to MAX_EPOLL_TIMEOUT_MSEC.
                if timeout is not None and timeout > self._backend.max_wait:
                    timeout = self._backend.max_wait
            else:
                timeout = None
            self.n_iterations += 1
            # 3. wait in the backend, lock released, time cache cleared
            backend = self._backend
            self._now_cache = -1.0
            if locked:
                self._sleeping = True  # from now on a mutator's change must wake us
                lock.release()
                try:
                    ready = backend.dispatch(timeout)
                finally:
                    lock.acquire()
                    self._sleeping = False
            else:
                ready = backend.dispatch(timeout)
            now = monotonic()
            if cache_time:
                self._now_cache = now
            # 4. ready fds' events → active queues (inlined: the hottest lines of the loop)
            if ready:
                ev_bits = backend.ev_bits
                activated = 0
                for fd, raw in ready:
                    slot = slots.get(fd)
                    if slot is None:
                        continue
                    what = ev_bits[raw]
                    for ev in slot.events:
                        bits = ev._events & what
                        if bits:
                            if ev._active:
                                ev._res |= bits
                            else:
                                ev._active = True
                                ev._res = bits
                                ev._ncalls = 1
                                activeq[ev._priority].append(ev)
                                activated += 1
                self._nactive += activated
            # 5. expired timers → active queues
            if heap:
                top = heap[0][0]  # the compiled build's C double (dispatch.pxd): no float per pass
                if top <= now:
                    self._expire_timers_locked(now)
            # 6. callbacks, then 7. ONCE / NONBLOCK
            if self._nactive or self._deferred:
                if simple and not self._deferred:  # skip the walk over priorities
                    ran = self._run_single_queue_locked(activeq[0])
                else:
                    ran = self._process_active_locked()
                if once and ran and not self._nactive and not self._deferred:
                    return 0
            elif nonblock:
                return 0

    def _expire_timers_locked(self, now: float) -> None:
        for ev in self._timers.pop_expired(now):
            ev._timer = None
            if ev._events & EV_PERSIST:
                self._recount_locked(ev)
            elif ev._inserted:
                # Unregister, but keep an I/O activation of this pass: the bits are OR-ed.
                self._del_locked(ev, keep_active=True)  # it recounts
            else:
                # A one-shot timer, the common case: _recount_locked(ev) inlined (the call is
                # 2.8 % of a timer's instructions, benchmarks/icount.py).
                ev._interval = None
                if ev._counted:
                    ev._counted = False
                    if not ev._internal:
                        self._nevents -= 1
            self._activate_locked(ev, EV_TIMEOUT)

    def _run_single_queue_locked(self, queue) -> int:
        """_run_queue_locked for a base with one priority and no dispatch limits: nothing can
        pre-empt the queue and nothing bounds it, so those checks go. Keep the two in step: one
        runner for both measured slower on the hot path (benchmarks/icount.py chain-nolock).
        """
        locked = self._locked
        lock = self._lock
        count = popped = 0
        try:
            # `while True` + break, not `while queue:`: CPython 3.11 counts only unconditional
            # backward jumps towards specialising a function, and this loop may run a whole
            # benchmark's worth of callbacks in one call (first calls would stay unspecialised).
            while True:
                if not queue:
                    break
                ev = queue.popleft()
                popped += 1
                ev._active = False
                res = ev._res
                ncalls = ev._ncalls
                if not ev._events & EV_PERSIST:
                    if ev._inserted or ev._timer is not None:
                        self._del_locked(ev)
                        ev._ncalls = ncalls  # zeroed by that delete; a delete() in the callback too
                elif ev._interval is not None:
                    self._reschedule_persist_locked(ev, res)
                if not ev._internal:
                    count += 1
                if locked:
                    self._current = ev
                    lock.release()
                    try:
                        ev._callback(ev._fd, res, ev._arg)
                    except Exception as exc:
                        self._report_callback_error(ev, res, exc)
                    finally:
                        lock.acquire()
                        self._current = None
                        if self._waiters:
                            self._cond.notify_all()
                else:
                    try:
                        ev._callback(ev._fd, res, ev._arg)
                    except Exception as exc:
                        self._report_callback_error(ev, res, exc)
                if ncalls > 1:
                    self._run_again_locked(ev, res, ncalls - 1)
                if self._break or self._continue:
                    count += 1  # counts as a run for EVLOOP_ONCE, as -1 does below
                    break
            return count
        finally:
            self._nactive -= popped
            self.n_callbacks += count

    def _process_active_locked(self) -> int:
        """Run active callbacks by priority, then deferred calls; the non-internal count."""
        ran = 0
        limit_prio = self._limit_prio
        for prio, queue in enumerate(self._activeq):
            if queue:
                self._running_prio = prio  # an activation of a better priority pre-empts it
                try:
                    count = self._run_queue_locked(queue, prio >= limit_prio)
                finally:
                    self._running_prio = _NO_PRIO
                if count < 0:
                    ran += 1
                    break
                ran += count
                if count:
                    break
        if self._deferred and not self._break and not self._continue:
            count = self._process_deferred_locked()
            ran += count if count >= 0 else 1
            self.n_callbacks += count if count >= 0 else 1
        return ran

    def _run_queue_locked(self, queue, bounded: bool) -> int:
        """Run one priority's queue: the non-internal callbacks run, or -1 when loopbreak() or
        loopcontinue() cut it short. `bounded`: stop at set_max_dispatch_interval()'s limits.

        The hot path: one popleft, a few slot reads, the lock released around the callback;
        an unbounded queue (the common case) costs one local test per callback for the limits.
        """
        if bounded:
            limit = self._max_callbacks
            endtime = None if self._max_interval is None else monotonic() + self._max_interval
            bounded = limit is not None or endtime is not None
        locked = self._locked
        lock = self._lock
        count = popped = 0
        try:
            # `while True` + break, not `while queue:`: CPython 3.11 counts only unconditional
            # backward jumps towards specialising a function, and this loop may run a whole
            # benchmark's worth of callbacks in one call (first calls would stay unspecialised).
            while True:
                if not queue:
                    break
                ev = queue.popleft()
                popped += 1
                ev._active = False
                res = ev._res
                ncalls = ev._ncalls
                if not ev._events & EV_PERSIST:
                    if ev._inserted or ev._timer is not None:
                        self._del_locked(ev)
                        ev._ncalls = ncalls  # zeroed by that delete; a delete() in the callback too
                elif ev._interval is not None:
                    self._reschedule_persist_locked(ev, res)
                if not ev._internal:
                    count += 1
                if locked:
                    self._current = ev
                    lock.release()
                    try:
                        ev._callback(ev._fd, res, ev._arg)
                    except Exception as exc:
                        self._report_callback_error(ev, res, exc)
                    finally:
                        lock.acquire()
                        self._current = None
                        if self._waiters:
                            self._cond.notify_all()
                else:  # NOLOCK: one thread by contract, nobody waits on _current
                    try:
                        ev._callback(ev._fd, res, ev._arg)
                    except Exception as exc:
                        self._report_callback_error(ev, res, exc)
                if ncalls > 1:
                    self._run_again_locked(ev, res, ncalls - 1)
                if self._break or self._continue:
                    return -1
                if bounded and ((limit is not None and count >= limit)
                                or (endtime is not None and monotonic() >= endtime)):
                    break
            return count
        finally:
            # Popped events leave the count here, once, rather than per callback.
            self._nactive -= popped
            self.n_callbacks += count

    def _run_again_locked(self, ev: Any, res: int, left: int) -> None:
        """A signal event owed `left` more runs (one per delivery, libevent's ncalls) has run
        once; a delete() from its callback zeroed _ncalls and cancels them."""
        if not ev._ncalls:
            return
        if ev._active:  # delivered again meanwhile: owe both
            ev._ncalls += left
        else:
            self._activate_locked(ev, res, left)

    def _reschedule_persist_locked(self, ev: Any, res: int) -> None:
        """libevent's persist rule: after a timeout, old deadline + interval; after I/O,
        now + interval; if that is already past, now + interval."""
        interval = ev._interval
        now = self._clock()
        run_at = (ev._deadline if res & EV_TIMEOUT and ev._deadline >= 0.0 else now) + interval
        if run_at < now:
            run_at = now + interval
        self._schedule_locked(ev, run_at, interval)
        self._recount_locked(ev)

    def _process_deferred_locked(self) -> int:
        """Run the deferred calls queued before this pass; -1 when loopbreak() cut it short."""
        deferred = self._deferred
        locked = self._locked
        lock = self._lock
        count = len(deferred)
        for _ in range(count):
            fn, args = deferred.popleft()
            if locked:
                lock.release()
            try:
                fn(*args)
            except Exception as exc:
                self._report_call_error(fn, exc, "call_soon() callback failed")
            finally:
                if locked:
                    lock.acquire()
            if self._break or self._continue:
                return -1
        return count
