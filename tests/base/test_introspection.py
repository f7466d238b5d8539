"""num_events, foreach_event, dump_events, pending, now / update_cache_time, and freeing
(regress.c's event_base_get_num_events, foreach, manipulate_active_events, free_active_base,
in spirit)."""

from __future__ import annotations

import io
import os
import time

import pytest

import reactorsvc
from reactorsvc import (EV_PERSIST, EV_READ, EV_TIMEOUT, EV_WRITE, EVLOOP_ONCE, Event,
                        EventBase)


def _noop(*_):
    pass


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_num_events_counts_each_added_event_once(pair, backend):
    r = Event(backend, pair[0].fileno(), EV_READ, _noop)
    t = Event.timer(backend, _noop)
    only_active = Event.timer(backend, _noop)
    assert backend.num_events() == 0
    r.add()
    r.add()
    r.add(5)
    t.add(5)
    t.add(6)
    assert backend.num_events() == 2
    only_active.activate(EV_TIMEOUT)  # only activated: not counted
    assert backend.num_events() == 2
    r.delete()
    r.delete()  # deleting twice is harmless
    assert backend.num_events() == 1
    t.free()
    assert backend.num_events() == 0
    r.free()


def test_a_fired_one_shot_event_is_no_longer_counted(pair, backend):
    Event(backend, pair[0].fileno(), EV_WRITE, _noop).add()
    persistent = Event(backend, pair[0].fileno(), EV_WRITE | EV_PERSIST, _noop)
    persistent.add()
    assert backend.num_events() == 2
    backend.loop(EVLOOP_ONCE)
    assert backend.num_events() == 1
    persistent.free()


def test_foreach_event_visits_added_and_active_events(pair, backend):
    r = Event(backend, pair[0].fileno(), EV_READ, _noop)
    t = Event.timer(backend, _noop)
    a = Event.timer(backend, _noop)
    never = Event.timer(backend, _noop)
    r.add()
    t.add(5)
    a.activate(EV_TIMEOUT)
    seen = []
    backend.foreach_event(seen.append)
    assert len(seen) == 3
    assert set(map(id, seen)) == {id(r), id(t), id(a)}
    assert never not in seen
    for ev in (r, t, a, never):
        ev.free()
    seen.clear()
    backend.foreach_event(seen.append)
    assert seen == []


def test_dump_events_writes_readable_text(pair, backend):
    fd = pair[0].fileno()
    Event(backend, fd, EV_READ | EV_PERSIST, _noop).add()
    Event.timer(backend, _noop).add(5)
    out = io.StringIO()
    backend.dump_events(out)
    text = out.getvalue()
    assert text.strip()
    assert str(fd) in text
    assert len(text.strip().splitlines()) >= 2  # one line per event, at least


def test_pending_reports_bits_of_an_active_event(backend):
    ev = Event(backend, -1, EV_TIMEOUT, _noop)
    ev.activate(EV_READ)
    assert ev.pending(EV_READ | EV_TIMEOUT | EV_WRITE) == EV_READ
    ev.activate(EV_WRITE)
    assert ev.pending(EV_READ | EV_TIMEOUT | EV_WRITE) == EV_READ | EV_WRITE
    assert ev.pending(EV_WRITE) == EV_WRITE
    ev.delete()
    assert ev.pending() == 0
    assert backend.loop() == 1


def test_now_outside_the_loop_is_the_clock(backend):
    t0 = time.monotonic()
    now = backend.now()
    t1 = time.monotonic()
    assert t0 <= now <= t1


def test_now_is_cached_inside_a_callback_until_updated(backend, spin):
    seen = {}

    def cb(*_):
        first = backend.now()
        spin(0.002)
        seen["cached"] = (first, backend.now())
        ev2.add(1.0)  # relative to the cached time, like libevent's gettime()
        seen["deadline"] = (ev2.deadline, first)
        backend.update_cache_time()
        seen["updated"] = (backend.now(), time.monotonic())

    ev2 = Event.timer(backend, _noop)
    Event.timer(backend, cb).add(0)
    backend.loop()
    first, again = seen["cached"]
    assert again == first
    deadline, base_now = seen["deadline"]
    assert deadline == pytest.approx(base_now + 1.0, abs=1e-7)
    updated, clock = seen["updated"]
    assert first + 0.002 <= updated <= clock
    ev2.free()


def test_no_cache_time_reads_the_clock_every_time(make_base, backend, spin):
    base = make_base(backend.method, flags=reactorsvc.EVENT_BASE_FLAG_NO_CACHE_TIME)
    seen = []

    def cb(*_):
        a = base.now()
        spin(0.002)
        before = time.monotonic()
        ev2.add(1.0)  # relative to the clock, not to a cached time
        seen.append((a, base.now(), before, ev2.deadline))

    ev2 = Event.timer(base, _noop)
    Event.timer(base, cb).add(0)
    base.loop()
    (a, b, before, deadline), = seen
    assert b >= a + 0.002
    assert deadline >= before + 1.0
    ev2.free()


def test_context_manager_frees_the_base_and_closes_its_fds(pair, backend):
    before = _fd_count()
    with EventBase(_config_for(backend.method)) as base:
        assert isinstance(base, EventBase)
        Event(base, pair[0].fileno(), EV_READ | EV_PERSIST, _noop).add()
        Event.timer(base, _noop).add(5)
        base.call_soon_threadsafe(_noop)  # makes the base set up its notifier
    assert _fd_count() == before
    with pytest.raises(reactorsvc.ReactorError):
        base.loop()


def test_context_manager_frees_on_exception(backend):
    before = _fd_count()
    with pytest.raises(KeyError):
        with EventBase(_config_for(backend.method)) as base:
            Event.timer(base, _noop).add(5)
            raise KeyError("inside")
    assert _fd_count() == before
    with pytest.raises(reactorsvc.ReactorError):
        base.loop()


def test_free_with_events_added_and_active(pair, backend):
    before = _fd_count()
    base = EventBase(_config_for(backend.method))
    Event(base, pair[1].fileno(), EV_READ, _noop).add()
    Event(base, pair[0].fileno(), 0, _noop).activate(EV_READ)
    Event.timer(base, _noop).add(3)
    base.once(-1, EV_TIMEOUT, _noop, None, timeout=3)
    base.free()
    assert _fd_count() == before


def _config_for(method: str) -> reactorsvc.EventConfig:
    cfg = reactorsvc.EventConfig()
    for other in reactorsvc.supported_methods():
        if other != method:
            cfg.avoid_method(other)
    cfg.set_flag(reactorsvc.EVENT_BASE_FLAG_IGNORE_ENV)
    return cfg
