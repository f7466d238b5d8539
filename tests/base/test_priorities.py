"""Priorities and the max-dispatch limits (regress.c's test_priorities,
test_priority_active_inversion, in spirit)."""

from __future__ import annotations

import time

import pytest

from reactorsvc import EV_READ, EV_TIMEOUT, EV_WRITE, Event, ReactorError


def _noop(*_):
    pass


@pytest.mark.parametrize("npriorities", [1, 2, 3, 8, 255])
def test_new_events_get_the_middle_priority(backend, npriorities):
    backend.priority_init(npriorities)
    assert Event.timer(backend, _noop).priority == npriorities // 2


def test_a_fresh_base_has_one_priority(backend):
    ev = Event.timer(backend, _noop)
    assert ev.priority == 0
    with pytest.raises(ValueError, match="priority"):
        ev.priority = 1


def test_lower_priority_number_runs_first(backend):
    backend.priority_init(3)
    order = []
    for prio in (2, 0, 1):
        ev = Event.timer(backend, lambda fd, what, p: order.append(p), prio)
        ev.priority = prio
        assert ev.priority == prio
        ev.activate(EV_TIMEOUT)
    assert backend.loop() == 1
    assert order == [0, 1, 2]


def test_higher_priority_activated_from_a_callback_runs_next(backend):
    """priority-active-inversion: what was activated at a better priority runs before the rest."""
    backend.priority_init(8)
    order = []

    def cb(fd, what, i):
        order.append(i)
        if len(order) == 1:
            events[1].activate(EV_READ)     # same priority as us: later
            events[2].activate(EV_TIMEOUT)  # better priority: next

    events = [Event(backend, -1, 0, cb, i) for i in range(3)]
    events[0].priority = 4
    events[1].priority = 4
    events[2].priority = 0
    events[0].activate(EV_WRITE)
    assert backend.loop() == 1
    assert order == [0, 2, 1]


def test_a_run_queue_makes_lower_queues_wait_for_a_new_poll(pair, backend):
    """After the priority-0 queue ran, the loop polls again before running priority 1."""
    a, b = pair
    backend.priority_init(2)
    order = []
    x = Event.timer(backend, lambda *_: (order.append("x"), a.send(b"!")))
    y = Event.timer(backend, lambda *_: order.append("y"))
    r = Event(backend, b.fileno(), EV_READ, lambda *_: (order.append("r"), b.recv(1)))
    x.priority, y.priority, r.priority = 0, 1, 0
    r.add()
    x.activate(EV_TIMEOUT)
    y.activate(EV_TIMEOUT)
    assert backend.loop() == 1
    assert order == ["x", "r", "y"]


@pytest.mark.parametrize("npriorities, expected", [(1, (3, 3)), (3, (3, 0))])
def test_self_readding_zero_timeouts_starve_worse_priorities(backend, npriorities, expected):
    backend.priority_init(npriorities)
    counts = {"one": 0, "two": 0}

    def cb(fd, what, name):
        if counts[name] == 3:
            backend.loopexit()
            return
        counts[name] += 1
        evs[name].add(0)

    evs = {name: Event.timer(backend, cb, name) for name in counts}
    evs["one"].priority = 0
    evs["two"].priority = npriorities - 1
    evs["one"].add(0)
    evs["two"].add(0)
    assert backend.loop() == 0
    assert (counts["one"], counts["two"]) == expected
    for ev in evs.values():
        ev.free()


def _limited_order(make_base, method, pair, dispatch, spin_first=0.0):
    """Three priority-1 callbacks; the first makes a priority-0 read event ready."""
    a, b = pair
    base = make_base(method, dispatch=dispatch)
    base.priority_init(2)
    order = []

    def first(*_):
        order.append("a")
        a.send(b"!")
        end = time.monotonic() + spin_first
        while time.monotonic() < end:
            pass

    r = Event(base, b.fileno(), EV_READ, lambda *_: (order.append("r"), b.recv(1)))
    r.priority = 0
    r.add()
    for cb in (first, lambda *_: order.append("b"), lambda *_: order.append("c")):
        ev = Event.timer(base, cb)
        assert ev.priority == 1
        ev.activate(EV_TIMEOUT)
    assert base.loop() == 1
    return order


def test_without_limits_a_queue_runs_to_the_end(make_base, pair, backend):
    assert _limited_order(make_base, backend.method, pair, None) == ["a", "b", "c", "r"]


def test_max_callbacks_lets_new_higher_priority_events_in(make_base, pair, backend):
    order = _limited_order(make_base, backend.method, pair, (None, 1, 0))
    assert order == ["a", "r", "b", "c"]


def test_max_interval_lets_new_higher_priority_events_in(make_base, pair, backend):
    order = _limited_order(make_base, backend.method, pair, (0.001, 1_000_000, 0),
                           spin_first=0.003)
    assert order == ["a", "r", "b", "c"]


@pytest.mark.parametrize("min_priority, expected", [
    (1, ["a", "r", "b", "c"]),   # queue 1 is limited
    (2, ["a", "b", "c", "r"]),   # queues below 2 run without limit
])
def test_min_priority_chooses_the_limited_queues(make_base, pair, backend, min_priority,
                                                 expected):
    order = _limited_order(make_base, backend.method, pair, (None, 1, min_priority))
    assert order == expected


@pytest.mark.parametrize("bad", [3, 4, -1])
def test_priority_out_of_range_is_a_value_error(backend, bad):
    backend.priority_init(3)
    ev = Event.timer(backend, _noop)
    with pytest.raises(ValueError, match="priority"):
        ev.priority = bad
    assert ev.priority == 1


@pytest.mark.parametrize("bad", [0, -2])
def test_priority_init_rejects_a_bad_count(backend, bad):
    with pytest.raises(ValueError, match="npriorities"):
        backend.priority_init(bad)


def test_priority_init_while_events_are_active_is_a_reactor_error(backend):
    ev = Event.timer(backend, _noop)
    ev.activate(EV_TIMEOUT)
    with pytest.raises(ReactorError):
        backend.priority_init(4)
    assert backend.loop() == 1
    backend.priority_init(4)  # fine once nothing is active
    assert Event.timer(backend, _noop).priority == 2


def test_setting_the_priority_of_an_active_event_is_a_reactor_error(backend):
    backend.priority_init(3)
    ev = Event.timer(backend, _noop)
    ev.activate(EV_TIMEOUT)
    with pytest.raises(ReactorError):
        ev.priority = 0
    assert ev.priority == 1
    assert backend.loop() == 1
    ev.priority = 0
    assert ev.priority == 0
