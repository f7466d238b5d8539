"""Timeouts: ordering, deadlines, re-add rules, delete, remove_timer, common timeouts
(regress.c's simpletimeout, event_pending, event_remove_timeout, common_timeout, in spirit)."""

from __future__ import annotations

import time

import pytest

from reactorsvc import EV_PERSIST, EV_READ, EV_TIMEOUT, EVLOOP_NONBLOCK, EVLOOP_ONCE, Event

SLACK = 1.0  # generous upper bound for "fired reasonably soon" on a loaded machine


def test_timeouts_fire_in_deadline_order(backend):
    order = []
    for delay in (0.03, 0.01, 0.02, 0.0):
        Event.timer(backend, lambda fd, what, d: order.append((d, what)), delay).add(delay)
    assert backend.loop() == 1
    assert order == [(0.0, EV_TIMEOUT), (0.01, EV_TIMEOUT), (0.02, EV_TIMEOUT),
                     (0.03, EV_TIMEOUT)]


def test_timeout_never_fires_early(backend):
    fired = []
    ev = Event.timer(backend, lambda *x: fired.append((time.monotonic(), backend.now())))
    start = time.monotonic()
    ev.add(0.02)
    deadline = ev.deadline
    assert backend.loop() == 1
    (clock, cached), = fired
    assert clock >= deadline and cached >= deadline
    assert start + 0.02 <= clock < start + 0.02 + SLACK


def test_zero_timeout_runs_in_the_next_pass(backend):
    fired = []
    Event.timer(backend, lambda fd, what, arg: fired.append(what)).add(0)
    backend.loop(EVLOOP_NONBLOCK)
    assert fired == [EV_TIMEOUT]


def test_deadline_and_pending_after_add(pair, backend):
    r = Event(backend, pair[0].fileno(), EV_READ, lambda *x: None)
    t = Event.timer(backend, lambda *x: None)
    r.add()
    t0 = time.monotonic()
    t.add(0.5)
    t1 = time.monotonic()
    assert t0 + 0.5 <= t.deadline <= t1 + 0.5
    assert r.deadline is None
    assert r.pending(EV_READ) == EV_READ
    assert r.pending(EV_TIMEOUT) == 0
    assert r.pending() == EV_READ
    assert t.pending(EV_TIMEOUT) == EV_TIMEOUT
    assert t.pending(EV_READ) == 0
    r.free()
    t.free()


def test_readd_with_a_timeout_reschedules(backend, spin):
    fired = []
    early = Event.timer(backend, lambda *x: fired.append("early"))
    early.add(10)
    far = early.deadline
    early.add(0.005)  # sooner: replaces the 10 s deadline
    assert early.deadline < far
    late = Event.timer(backend, lambda *x: fired.append("late"))
    late.add(0.005)
    late.add(10)  # later: replaces the 5 ms deadline
    spin(0.01)
    backend.loop(EVLOOP_NONBLOCK)
    assert fired == ["early"]
    assert late.pending(EV_TIMEOUT) == EV_TIMEOUT
    late.free()


@pytest.mark.parametrize("kind", ["timer", "io"])
def test_readd_without_a_timeout_keeps_the_pending_one(pair, backend, kind):
    if kind == "timer":
        ev = Event.timer(backend, lambda *x: None)
    else:
        ev = Event(backend, pair[0].fileno(), EV_READ, lambda *x: None)
    ev.add(0.5)
    deadline = ev.deadline
    ev.add()
    ev.add(None)
    assert ev.deadline == deadline
    assert ev.pending(EV_TIMEOUT) == EV_TIMEOUT
    ev.free()


def test_delete_cancels_a_timer(backend):
    fired = []
    ev = Event.timer(backend, lambda *x: fired.append(1))
    ev.add(0.005)
    ev.delete()
    assert ev.deadline is None and ev.pending() == 0
    t0 = time.monotonic()
    assert backend.loop() == 1
    assert time.monotonic() - t0 < 0.005 + SLACK / 2
    assert fired == []


def test_io_event_with_timeout_reports_ev_timeout(pair, backend):
    got = []
    ev = Event(backend, pair[1].fileno(), EV_READ, lambda fd, what, arg: got.append(what))
    ev.add(0.005)
    assert backend.loop() == 1
    assert got == [EV_TIMEOUT]
    assert ev.pending() == 0


def test_remove_timer_keeps_io_interest(pair, backend):
    a, b = pair
    got = {"r": 0, "t": 0}

    def on_read(fd, what, arg):
        assert b.recv(1) == b"A"
        got["r"] |= what
        rev.delete()

    rev = Event(backend, b.fileno(), EV_READ | EV_PERSIST, on_read)
    tev = Event.timer(backend, lambda fd, what, arg: got.__setitem__("t", got["t"] + 1))
    rev.add(0.01)
    tev.add(0.01)
    rev.remove_timer()
    tev.remove_timer()
    assert rev.deadline is None and tev.deadline is None
    assert rev.pending() == EV_READ
    assert tev.pending() == 0
    Event.timer(backend, lambda *x: a.send(b"A")).add(0.03)  # after the dropped deadlines
    assert backend.loop() == 1
    assert got == {"r": EV_READ, "t": 0}


def test_remove_timer_on_a_pure_timer_leaves_nothing_added(backend):
    ev = Event.timer(backend, lambda *x: None)
    ev.add(0.01)
    assert backend.num_events() == 1
    ev.remove_timer()
    assert backend.num_events() == 0
    assert backend.loop() == 1


def test_common_timeout_events_fire_in_fifo_order(backend):
    ct = backend.init_common_timeout(0.01)
    order, late = [], []
    deadlines = {}

    def cb(fd, what, i):
        order.append(i)
        if backend.now() < deadlines[i]:
            late.append(i)

    for i in range(40):
        ev = Event.timer(backend, cb, i)
        t0 = time.monotonic()
        ev.add(ct)
        deadlines[i] = ev.deadline
        assert t0 + 0.01 <= ev.deadline <= time.monotonic() + 0.01
    assert backend.loop() == 1
    assert order == list(range(40))
    assert late == []


def test_persistent_common_timeout_rounds_keep_fifo_order(backend):
    ct = backend.init_common_timeout(0.003)
    order = []
    counts = {}

    def cb(fd, what, i):
        order.append(i)
        counts[i] = counts.get(i, 0) + 1
        if counts[i] == 3:
            events[i].delete()

    events = [Event(backend, -1, EV_PERSIST, cb, i) for i in range(10)]
    for ev in events:
        ev.add(ct)
    assert backend.loop() == 1
    assert order == list(range(10)) * 3


def test_switching_between_common_and_plain_timeouts(backend):
    """The last add() wins, whatever kind of timeout each add used (regress.c's glass-box mix)."""
    short_ct = backend.init_common_timeout(0.01)
    long_ct = backend.init_common_timeout(0.04)
    fired = []
    plan = {  # name: (first timeout, second timeout, group of the second)
        "common-to-plain": (long_ct, 0.01, "short"),
        "plain-to-common": (0.04, short_ct, "short"),
        "common-to-common": (long_ct, short_ct, "short"),
        "short-to-long": (short_ct, 0.04, "long"),
        "long-common": (long_ct, None, "long"),
    }
    starts = {}
    for name, (first, second, _group) in plan.items():
        ev = Event.timer(backend, lambda fd, what, n: fired.append((n, time.monotonic())), name)
        ev.add(first)
        starts[name] = time.monotonic()
        if second is not None:
            ev.add(second)
    assert backend.loop() == 1
    names = [n for n, _ in fired]
    assert sorted(names) == sorted(plan)
    shorts = {n for n in plan if plan[n][2] == "short"}
    assert set(names[:len(shorts)]) == shorts
    for name, at in fired:
        want = 0.01 if plan[name][2] == "short" else 0.04
        assert at >= starts[name] + want - 0.001  # -1 ms: starts[] was read after add()


def test_init_common_timeout_rejects_bad_durations(backend):
    with pytest.raises(ValueError, match="duration"):
        backend.init_common_timeout(-0.5)
    with pytest.raises(ValueError, match="duration"):
        backend.init_common_timeout(float("nan"))


def test_once_flag_waits_for_the_first_timer(backend):
    fired = []
    for d in (0.01, 0.5):
        Event.timer(backend, lambda fd, what, d: fired.append(d), d).add(d)
    t0 = time.monotonic()
    assert backend.loop(EVLOOP_ONCE) == 0
    assert fired == [0.01]
    assert 0.01 <= time.monotonic() - t0 < 0.5
