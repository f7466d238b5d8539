"""loop() flags and return values, loopexit / loopbreak / loopcontinue, got_exit / got_break
(regress.c's loopexit, loopexit_multiple, loopbreak, in spirit; plus the libevent#1292 fix)."""

from __future__ import annotations

import threading
import time

from reactorsvc import (EV_READ, EV_TIMEOUT, EV_WRITE, EVLOOP_NO_EXIT_ON_EMPTY, EVLOOP_NONBLOCK,
                        EVLOOP_ONCE, Event)

SLACK = 1.0


def test_empty_loop_returns_1(backend):
    assert backend.loop() == 1
    assert backend.loop(EVLOOP_ONCE) == 1
    assert backend.dispatch() == 1
    assert not backend.got_exit() and not backend.got_break()


def test_empty_nonblocking_loop_returns_1(backend):
    """libevent checks for an empty base before polling, whatever the flags."""
    assert backend.loop(EVLOOP_NONBLOCK) == 1
    assert backend.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE) == 1


def test_nonblock_with_no_exit_on_empty_returns_0(backend):
    assert backend.loop(EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY) == 0


def test_no_exit_on_empty_keeps_waiting_until_another_thread_breaks(backend):
    ran = threading.Event()
    Event.timer(backend, lambda *_: ran.set()).add(0.002)

    def breaker():
        assert ran.wait(5)
        time.sleep(0.02)  # the subject: the loop keeps waiting with nothing added
        backend.loopbreak()

    t = threading.Thread(target=breaker)
    t.start()
    try:
        t0 = time.monotonic()
        assert backend.loop(EVLOOP_NO_EXIT_ON_EMPTY) == 0
        assert time.monotonic() - t0 >= 0.02
        assert backend.got_break()
        assert backend.num_events() == 0
    finally:
        t.join(5)


def test_nonblock_does_not_wait_for_a_timer(backend):
    fired = []
    ev = Event.timer(backend, lambda *_: fired.append(1))
    ev.add(0.5)
    t0 = time.monotonic()
    assert backend.loop(EVLOOP_NONBLOCK) == 0
    assert time.monotonic() - t0 < 0.25
    assert fired == []
    ev.free()


def test_nonblock_runs_ready_callbacks_then_returns_1_when_empty(pair, backend):
    """libevent's NONBLOCK goes round again while callbacks ran; an empty base then gives 1."""
    a, b = pair
    fired = []
    Event(backend, a.fileno(), EV_WRITE, lambda fd, what, arg: fired.append(what)).add()
    assert backend.loop(EVLOOP_NONBLOCK) == 1
    assert fired == [EV_WRITE]


def test_once_waits_then_runs_all_active_callbacks(pair, backend):
    a, b = pair
    order = []
    Event.timer(backend, lambda *_: order.append("t1")).add(0.01)
    Event.timer(backend, lambda *_: order.append("t2")).add(0.01)
    Event.timer(backend, lambda *_: order.append("later")).add(0.3)
    t0 = time.monotonic()
    assert backend.loop(EVLOOP_ONCE) == 0
    assert 0.01 <= time.monotonic() - t0 < 0.3
    assert sorted(order) == ["t1", "t2"]


def test_loopexit_with_delay_ends_a_loop_with_a_far_timer(backend):
    far = Event.timer(backend, lambda *_: None)
    far.add(86400)
    backend.loopexit(0.02)
    t0 = time.monotonic()
    assert backend.loop() == 0
    elapsed = time.monotonic() - t0
    assert 0.02 - 0.001 <= elapsed < 0.02 + SLACK
    assert backend.got_exit() and not backend.got_break()
    assert far.pending(EV_TIMEOUT) == EV_TIMEOUT
    far.free()


def test_the_earliest_of_several_loopexits_wins(backend):
    backend.loopexit(0.01)
    backend.loopexit(3)
    t0 = time.monotonic()
    assert backend.loop() == 0
    assert time.monotonic() - t0 < 1.5
    assert backend.got_exit()


def test_a_pending_loopexit_keeps_loop_from_returning_1(backend):
    backend.loopexit(0.01)
    t0 = time.monotonic()
    assert backend.loop() == 0
    assert time.monotonic() - t0 >= 0.01 - 0.001
    assert backend.got_exit()


def test_loopexit_lets_the_rest_of_the_iteration_run(backend):
    order = []

    def first(*_):
        order.append("first")
        backend.loopexit()

    Event.timer(backend, first).activate(EV_TIMEOUT)
    for name in ("second", "third"):
        Event.timer(backend, lambda fd, w, n: order.append(n), name).activate(EV_TIMEOUT)
    assert backend.loop() == 0
    assert order == ["first", "second", "third"]
    assert backend.got_exit() and not backend.got_break()


def test_loopbreak_stops_right_after_the_running_callback(backend):
    order = []

    def first(*_):
        order.append("first")
        backend.loopbreak()

    Event.timer(backend, first).add(0)
    other = Event.timer(backend, lambda *_: order.append("other"))
    other.add(0)
    assert backend.loop() == 0
    assert order == ["first"]
    assert backend.got_break() and not backend.got_exit()
    assert other.pending() == EV_TIMEOUT  # still active: the next loop runs it
    assert backend.loop() == 1
    assert order == ["first", "other"]
    assert not backend.got_break()


def test_loopcontinue_polls_before_the_rest_of_the_queue(pair, backend):
    a, b = pair
    backend.priority_init(2)
    order = []

    def first(*_):
        order.append("a")
        a.send(b"!")
        backend.loopcontinue()

    r = Event(backend, b.fileno(), EV_READ, lambda *_: (order.append("r"), b.recv(1)))
    r.priority = 0
    r.add()
    Event.timer(backend, first).activate(EV_TIMEOUT)
    Event.timer(backend, lambda *_: order.append("b")).activate(EV_TIMEOUT)
    assert backend.loop() == 1
    assert order == ["a", "r", "b"]
    assert not backend.got_break() and not backend.got_exit()


def test_got_flags_reset_when_a_new_loop_starts(backend):
    Event.timer(backend, lambda *_: backend.loopbreak()).add(0)
    assert backend.loop() == 0
    assert backend.got_break()
    backend.loopexit(0)
    assert backend.loop() == 0
    assert backend.got_exit() and not backend.got_break()
    assert backend.loop() == 1
    assert not backend.got_exit() and not backend.got_break()


def test_loopbreak_before_loop_is_remembered(backend):
    fired = []
    ev = Event.timer(backend, lambda *_: fired.append(1))
    ev.add(0)
    backend.loopbreak()
    assert backend.loop() == 0
    assert fired == []
    assert backend.got_break()
    assert backend.loop() == 1  # remembered once, not forever
    assert fired == [1]


def test_loopexit_before_loop_is_remembered(backend):
    far = Event.timer(backend, lambda *_: None)
    far.add(60)
    backend.loopexit()
    t0 = time.monotonic()
    assert backend.loop() == 0
    assert time.monotonic() - t0 < 0.5
    assert backend.got_exit()
    far.free()


def test_delayed_loopexit_counts_from_the_call(backend, spin):
    far = Event.timer(backend, lambda *_: None)
    far.add(60)
    backend.loopexit(0.04)
    spin(0.05)  # the delay expires before the loop even starts
    t0 = time.monotonic()
    assert backend.loop() == 0
    assert time.monotonic() - t0 < 0.035  # not 0.04 more, counted from loop entry
    assert backend.got_exit()
    far.free()
