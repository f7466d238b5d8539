"""libevent's persistent-timeout rescheduling rule and OR-ing of activations (regress.c's
persistent_timeout, persistent_timeout_jump, persistent_active_timeout, in spirit).

The rule (DESIGN.md): rescheduled just before each run of the callback; after a timeout at
old deadline + interval, after I/O (or activate) at now + interval; if that is already past,
now + interval. Inside the callback `deadline` is already the next one; an add() there wins.
"""

from __future__ import annotations

import time

import pytest

from reactorsvc import EV_PERSIST, EV_READ, EV_TIMEOUT, EV_WRITE, EVLOOP_ONCE, Event

EXACT = 1e-7  # deadlines are sums of the same floats: equal up to rounding


def _expected_after_timeout(prev_deadline: float, now: float, interval: float) -> float:
    nxt = prev_deadline + interval
    return nxt if nxt > now else now + interval


def test_persistent_timer_repeats_until_loopexit(backend):
    count = []

    def cb(fd, what, arg):
        count.append(what)
        if len(count) == 6:
            backend.loopexit()

    ev = Event(backend, -1, EV_TIMEOUT | EV_PERSIST, cb)
    ev.add(0.002)
    assert backend.loop() == 0
    assert count == [EV_TIMEOUT] * 6
    assert ev.pending(EV_TIMEOUT) == EV_TIMEOUT  # still scheduled
    ev.free()


def test_deadline_after_a_timeout_is_old_deadline_plus_interval(backend):
    interval = 0.01
    seen = []

    def cb(fd, what, arg):
        seen.append((ev.deadline, backend.now()))
        if len(seen) == 3:
            ev.delete()

    ev = Event(backend, -1, EV_PERSIST, cb)
    ev.add(interval)
    prev = ev.deadline
    assert backend.loop() == 1
    for deadline, now in seen:
        assert now >= prev  # it fired at or after its deadline
        assert deadline == pytest.approx(_expected_after_timeout(prev, now, interval), abs=EXACT)
        prev = deadline


def test_deadline_after_io_is_now_plus_interval(pair, backend, spin):
    a, b = pair
    seen = []

    def cb(fd, what, arg):
        seen.append((what, ev.deadline, backend.now()))
        b.recv(10)

    ev = Event(backend, b.fileno(), EV_READ | EV_PERSIST, cb)
    ev.add(10)
    first = ev.deadline
    spin(0.005)  # so that now + 10 is visibly later than the first deadline
    a.send(b"x")
    backend.loop(EVLOOP_ONCE)
    (what, deadline, now), = seen
    assert what == EV_READ
    assert deadline == pytest.approx(now + 10, abs=EXACT)
    assert deadline > first + 0.004
    ev.free()


def test_late_persistent_timer_is_rescheduled_from_now(backend, spin):
    """No catch-up burst: a timer that is very late runs once, then waits a full interval."""
    seen = []
    ev = Event(backend, -1, EV_PERSIST,
               lambda fd, what, arg: seen.append((ev.deadline, backend.now())))
    ev.add(0.02)
    spin(0.07)  # three intervals late
    backend.loopexit(0.01)
    assert backend.loop() == 0
    assert len(seen) == 1
    deadline, now = seen[0]
    assert deadline == pytest.approx(now + 0.02, abs=EXACT)
    ev.free()


def test_add_with_timeout_inside_callback_wins(backend):
    seen = []

    def cb(fd, what, arg):
        seen.append((time.monotonic(), backend.now(), ev.deadline))
        if len(seen) == 1:
            ev.add(0.03)
            seen.append(("readded", ev.deadline))
        else:
            ev.delete()

    ev = Event(backend, -1, EV_PERSIST, cb)
    ev.add(0.005)
    first = ev.deadline
    assert backend.loop() == 1
    (_, now1, resched), (_, readded), (clock2, now2, _) = seen
    assert resched == pytest.approx(_expected_after_timeout(first, now1, 0.005), abs=EXACT)
    assert readded == pytest.approx(now1 + 0.03, abs=EXACT)
    assert clock2 >= readded and now2 >= readded


def test_add_without_timeout_inside_callback_keeps_rescheduled_deadline(backend):
    seen = []

    def cb(fd, what, arg):
        before = ev.deadline
        ev.add()
        seen.append((before, ev.deadline))
        ev.delete()

    ev = Event(backend, -1, EV_PERSIST, cb)
    ev.add(0.005)
    first = ev.deadline
    assert backend.loop() == 1
    (before, after), = seen
    assert before is not None and before > first
    assert after == before


def test_activate_counts_as_io_for_rescheduling(backend):
    """A persistent timer activated by hand is rescheduled from now, then keeps its period."""
    interval = 0.04
    seen = []

    def cb(fd, what, arg):
        seen.append((what, ev.deadline, backend.now()))
        if len(seen) == 3:
            ev.delete()

    ev = Event(backend, -1, EV_TIMEOUT | EV_PERSIST, cb)
    ev.add(interval)
    start = time.monotonic()
    backend.once(-1, EV_TIMEOUT, lambda fd, what, e: e.activate(EV_READ), ev, timeout=0.02)
    assert backend.loop() == 1
    assert [w for w, _, _ in seen] == [EV_READ, EV_TIMEOUT, EV_TIMEOUT]
    (_, d1, now1), (_, d2, now2), (_, d3, now3) = seen
    assert now1 >= start + 0.02
    assert d1 == pytest.approx(now1 + interval, abs=EXACT)
    assert now2 >= d1
    assert d2 == pytest.approx(_expected_after_timeout(d1, now2, interval), abs=EXACT)
    assert now3 >= d2
    assert d3 == pytest.approx(_expected_after_timeout(d2, now3, interval), abs=EXACT)


@pytest.mark.parametrize("persist", [False, True], ids=["oneshot", "persist"])
def test_ready_io_and_expired_timeout_run_once_with_bits_ored(pair, backend, spin, persist):
    a, b = pair
    calls = []
    ev = Event(backend, b.fileno(), EV_READ | (EV_PERSIST if persist else 0),
               lambda fd, what, arg: calls.append(what))
    ev.add(0.005)
    a.send(b"x")
    spin(0.01)  # both the timeout and the readiness are due before the loop looks
    backend.loop(EVLOOP_ONCE)
    assert calls == [EV_READ | EV_TIMEOUT]
    ev.free()


def test_activating_an_active_event_ors_the_bits(backend):
    calls = []
    target = Event.timer(backend, lambda fd, what, arg: calls.append(what))

    def first(fd, what, arg):
        target.activate(EV_READ)
        target.activate(EV_WRITE)
        assert target.pending(EV_READ | EV_WRITE | EV_TIMEOUT) == EV_READ | EV_WRITE

    Event.timer(backend, first).activate(EV_TIMEOUT)
    assert backend.loop() == 1
    assert calls == [EV_READ | EV_WRITE]
