"""Targeted thread races on every backend: delete vs. a running callback, add vs. loopbreak,
loopbreak before loop, free vs. add, call_soon_threadsafe ordering, and the base lock being
released while a callback runs (activation storms: test_storms.py)."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from reactorsvc import (
    EV_FINALIZE,
    EV_PERSIST,
    EV_READ,
    EV_TIMEOUT,
    EVLOOP_NONBLOCK,
    Event,
    ReactorError,
)

from ..helpers import wait_for

pytestmark = pytest.mark.timeout(30)


def _noop(fd, what, arg):
    pass


def _blocking_callback():
    """(callback, entered, release, log): the callback logs its return after `release`."""
    entered, release, log = threading.Event(), threading.Event(), []

    def callback(fd, what, arg):
        entered.set()
        release.wait(10)
        log.append("callback returned")
    return callback, entered, release, log


def _in_thread(fn) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run():
        fn()
        done.set()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done


# -- delete vs. a running callback ------------------------------------------------------------

@pytest.mark.parametrize("events", [0, EV_PERSIST], ids=["oneshot", "persist"])
def test_blocking_delete_from_another_thread_waits_for_the_running_callback(method, make_base,
                                                                           start_loop, events):
    base = make_base(method)
    callback, entered, release, log = _blocking_callback()
    ev = Event(base, -1, events, callback)
    loop = start_loop(base)
    ev.add(0.001)
    assert entered.wait(5)
    t, deleted = _in_thread(lambda: (ev.delete(), log.append("delete returned")))
    try:
        assert not deleted.wait(0.2), "delete() returned while the callback was still running"
    finally:
        release.set()
        t.join(5)
    assert log == ["callback returned", "delete returned"]
    assert ev.pending() == 0
    # The loop has since run a 20 ms timer: a persistent 1 ms one would have run again.
    later = threading.Event()
    Event.timer(base, lambda *_: later.set()).add(0.02)
    assert later.wait(5) and loop.barrier()
    assert log == ["callback returned", "delete returned"]


def test_no_callback_starts_after_a_blocking_delete_returned(method, make_base, start_loop):
    base = make_base(method)
    state = {"deleted": False}
    started = threading.Event()
    late = []
    runs = [0]

    def callback(fd, what, arg):
        if state["deleted"]:
            late.append(runs[0])
        runs[0] += 1
        started.set()

    ev = Event(base, -1, EV_PERSIST, callback)
    start_loop(base)
    for i in range(600):
        state["deleted"] = False
        started.clear()
        if i % 3 == 0:
            ev.activate(EV_TIMEOUT)
        else:
            ev.add(0)  # interval 0: runs on every pass until deleted
        if i % 2:
            assert started.wait(5)  # delete while the callback is (or was just) running
        ev.delete()
        state["deleted"] = True
    assert late == [], f"callbacks started after delete() returned: runs {late[:10]}"
    assert runs[0] >= 300  # every odd iteration waited for a run


@pytest.mark.parametrize("how", ["block_false", "ev_finalize"])
def test_nonblocking_and_finalize_deletes_do_not_wait(method, make_base, start_loop, how):
    base = make_base(method)
    callback, entered, release, log = _blocking_callback()
    ev = Event(base, -1, EV_PERSIST | (EV_FINALIZE if how == "ev_finalize" else 0), callback)
    start_loop(base)
    ev.add(0.001)
    assert entered.wait(5)
    delete = ev.delete if how == "ev_finalize" else lambda: ev.delete(block=False)
    t, deleted = _in_thread(lambda: (delete(), log.append("delete returned")))
    try:
        assert deleted.wait(5), "delete() waited for the running callback"
        assert log == ["delete returned"]
        assert ev.pending() == 0
    finally:
        release.set()
        t.join(5)
    wait_for(lambda: len(log) == 2)
    assert log == ["delete returned", "callback returned"]


def test_finalize_from_another_thread_runs_after_the_callback_in_the_loop_thread(method, make_base,
                                                                                start_loop):
    base = make_base(method)
    callback, entered, release, log = _blocking_callback()
    ev = Event(base, -1, EV_PERSIST, callback, "arg")
    loop = start_loop(base)
    ev.add(0.001)
    assert entered.wait(5)
    finalized = threading.Event()

    def finalizer(event, arg):
        log.append(("finalizer", event is ev, arg, threading.get_ident() == loop.ident))
        finalized.set()

    try:
        ev.finalize(finalizer)  # returns at once although the callback runs
        assert not finalized.is_set()
    finally:
        release.set()
    assert finalized.wait(5)
    assert log == ["callback returned", ("finalizer", True, "arg", True)]


def test_delete_of_itself_inside_its_callback_never_blocks(method, make_base, start_loop):
    base = make_base(method)
    done = threading.Event()

    def callback(fd, what, arg):
        ev.delete()  # blocking by default, but this is the loop thread
        done.set()

    ev = Event(base, -1, EV_PERSIST, callback)
    loop = start_loop(base)
    ev.add(0.001)
    assert done.wait(5), "delete() inside the event's own callback blocked the loop"
    assert ev.pending() == 0 and base.num_events() == 0
    assert loop.barrier()


# -- loopbreak --------------------------------------------------------------------------------

def test_adds_racing_loopbreaks_all_run_exactly_once(method, make_base, start_loop):
    base = make_base(method)
    n = 3000
    counts = [0] * n
    total = [0]
    all_ran = threading.Event()

    def callback(fd, what, i):
        counts[i] += 1
        total[0] += 1
        if total[0] == n:
            all_ran.set()

    events = [Event.timer(base, callback, i) for i in range(n)]
    loop = start_loop(base, restart=True)

    def breaker():
        # 300 breaks, and at least two seen by the loop: without a GIL, sleep(0) hands the
        # loop thread nothing, so 300 back-to-back breaks can all land in one loop() call.
        deadline = time.monotonic() + 5
        for _ in range(300):
            base.loopbreak()
            time.sleep(0)  # let the loop thread break and restart in between
        while len(loop.results) < 2 and time.monotonic() < deadline:
            base.loopbreak()
            time.sleep(0.001)

    def adder():
        for i, ev in enumerate(events):
            ev.add(0.0005 * (i % 3))
            if i % 10 == 0:
                time.sleep(0)

    threads = [threading.Thread(target=fn) for fn in (breaker, adder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all_ran.wait(10), f"{n - total[0]} added timers never ran"
    assert loop.barrier()
    assert counts == [1] * n
    assert len(loop.results) >= 2  # the loop really was broken and restarted
    assert all(rc == 0 and got_break for rc, got_break, _ in loop.results)


@pytest.mark.parametrize("stop", ["loopbreak", "loopexit"])
def test_loopbreak_or_loopexit_before_loop_makes_the_next_loop_return_at_once(method, make_base,
                                                                             stop):
    base = make_base(method)
    Event.timer(base, _noop).add(30)  # without the request, loop() would wait 30 s
    t, done = _in_thread(getattr(base, stop))
    t.join(5)
    assert done.is_set()
    started = time.monotonic()
    assert base.loop() == 0
    assert time.monotonic() - started < 1.0
    assert (base.got_break(), base.got_exit()) == (stop == "loopbreak", stop == "loopexit")
    # The request was used up: the next loop runs normally.
    assert base.loop(EVLOOP_NONBLOCK) == 0
    assert (base.got_break(), base.got_exit()) == (False, False)


# -- free -------------------------------------------------------------------------------------

def test_free_while_the_loop_runs_in_another_thread_raises_and_leaves_the_base_working(
        method, make_base, start_loop):
    base = make_base(method)
    loop = start_loop(base)
    with pytest.raises(ReactorError):
        base.free()
    fired = threading.Event()
    Event.timer(base, lambda *_: fired.set()).add(0)
    assert fired.wait(5)
    assert loop.stop()
    base.free()
    uses_after_free = [lambda: Event.timer(base, _noop), base.loop, lambda: base.loopbreak(),
                lambda: base.once(-1, EV_TIMEOUT, _noop)]
    for call in uses_after_free:
        with pytest.raises(ReactorError):
            call()


def test_operations_racing_free_raise_reactor_error_and_nothing_else(method, make_base):
    base = make_base(method)
    a, b = socket.socketpair()
    timers = [Event.timer(base, _noop) for _ in range(32)]
    readers = [Event(base, b.fileno(), EV_READ, _noop) for _ in range(32)]
    ops = [lambda i: timers[i % 32].add(0.5), lambda i: readers[i % 32].add(),
           lambda i: readers[i % 32].delete(), lambda i: timers[i % 32].activate(EV_TIMEOUT),
           lambda i: Event.timer(base, _noop).add(1)]
    outcome: dict[int, object] = {}
    warmed = [threading.Event() for _ in ops]

    def hammer(k):
        i = 0
        while True:
            try:
                ops[k](i)
            except ReactorError:
                outcome[k] = "ReactorError"
                return
            except Exception as exc:  # noqa: BLE001 -- anything else is the finding
                outcome[k] = exc
                return
            i += 1
            if i == 200:
                warmed[k].set()

    threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(len(ops))]
    try:
        for t in threads:
            t.start()
        assert all(w.wait(5) for w in warmed)
        base.free()
        for t in threads:
            t.join(5)
    finally:
        a.close()
        b.close()
    assert outcome == {k: "ReactorError" for k in range(len(ops))}


# -- call_soon_threadsafe ---------------------------------------------------------------------

def test_call_soon_threadsafe_is_fifo_per_producer(method, make_base, start_loop):
    base = make_base(method)
    producers, posts = 4, 20000
    last = [0] * producers
    disorder = []
    threads_seen = set()
    done = threading.Event()
    total = [0]

    def received(p, seq):
        threads_seen.add(threading.get_ident())
        if seq != last[p] + 1:
            disorder.append((p, last[p], seq))
        last[p] = seq
        total[0] += 1
        if total[0] == producers * posts:
            done.set()

    loop = start_loop(base)

    def produce(p):
        for seq in range(1, posts + 1):
            base.call_soon_threadsafe(received, p, seq)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert done.wait(10), f"{producers * posts - total[0]} posted calls never ran"
    assert disorder == []
    assert last == [posts] * producers
    assert threads_seen == {loop.ident}


def test_call_soon_threadsafe_on_a_freed_base_raises_in_the_callers_thread(method, make_base):
    base = make_base(method)
    base.free()
    raised = []

    def post():
        try:
            base.call_soon_threadsafe(_noop, 0, 0, None)
        except ReactorError as exc:
            raised.append((threading.get_ident(), exc))

    t = threading.Thread(target=post)
    t.start()
    t.join(5)
    assert [ident for ident, _ in raised] == [t.ident]


# -- the lock is released around callbacks ----------------------------------------------------

def test_other_threads_use_the_base_while_a_long_callback_runs(method, make_base, start_loop):
    base = make_base(method)
    callback, entered, release, log = _blocking_callback()
    blocker = Event.timer(base, callback)
    other = Event.timer(base, _noop)
    start_loop(base)
    blocker.add(0)
    assert entered.wait(5)

    def use_the_base():
        other.add(30)
        other.priority = 0
        base.foreach_event(lambda e: None)
        base.dump_events(io.StringIO())
        other.delete()
        log.append(("done while the callback ran", not release.is_set()))

    t, done = _in_thread(use_the_base)
    try:
        assert done.wait(5), "another thread waited for a running callback to finish"
    finally:
        release.set()
        t.join(5)
    assert log[0] == ("done while the callback ran", True)
