"""Misuse raises ReactorError / ValueError / TypeError naming what is wrong (regress.c's
bad_assign, bad_reentrant, in spirit)."""

from __future__ import annotations

import math

import pytest

from reactorsvc import (EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE, Event,
                        EventBase, ReactorError)


def _noop(*_):
    pass


def test_reentrant_loop_is_a_reactor_error(backend):
    seen = []

    def cb(fd, what, arg):
        try:
            backend.loop()
        except ReactorError as exc:
            seen.append(str(exc))
        try:
            backend.dispatch()
        except ReactorError as exc:
            seen.append(str(exc))

    Event(backend, -1, 0, cb).activate(EV_WRITE)
    assert backend.loop() == 1
    assert len(seen) == 2 and all(seen)


def test_freed_event_cannot_be_used(pair, backend):
    ev = Event(backend, pair[0].fileno(), EV_READ, _noop)
    ev.add()
    ev.free()
    assert backend.num_events() == 0
    for use in (lambda: ev.add(), lambda: ev.add(1.0), lambda: ev.activate(EV_READ),
                lambda: ev.remove_timer(), lambda: setattr(ev, "priority", 0),
                lambda: ev.finalize(_noop), lambda: ev.free()):
        with pytest.raises(ReactorError):
            use()


def test_delete_after_free_is_a_reactor_error(backend):
    """DESIGN.md: free() -- "delete; any later use raises ReactorError"."""
    ev = Event.timer(backend, _noop)
    ev.free()
    with pytest.raises(ReactorError):
        ev.delete()


def test_freed_base_cannot_be_used(make_base, backend):
    base = make_base(backend.method)
    ev = Event.timer(base, _noop)
    base.free()
    for use in (lambda: base.loop(), lambda: base.dispatch(), lambda: base.loopexit(),
                lambda: base.loopbreak(), lambda: base.once(-1, EV_TIMEOUT, _noop),
                lambda: base.call_soon(_noop), lambda: base.priority_init(2),
                lambda: Event.timer(base, _noop), lambda: ev.add(0.1)):
        with pytest.raises(ReactorError):
            use()


def test_signal_with_io_bits_is_a_value_error(backend):
    for bits in (EV_SIGNAL | EV_READ, EV_SIGNAL | EV_WRITE):
        with pytest.raises(ValueError, match="events"):
            Event(backend, 10, bits, _noop)


def test_unknown_event_bits_are_a_value_error(backend):
    with pytest.raises(ValueError, match="events"):
        Event(backend, 0, 0x1000 | EV_READ, _noop)


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, -math.inf])
def test_bad_timeouts_are_value_errors(pair, backend, bad):
    ev = Event(backend, pair[0].fileno(), EV_READ, _noop)
    with pytest.raises(ValueError, match="timeout"):
        ev.add(bad)
    assert ev.pending() == 0
    assert backend.num_events() == 0
    with pytest.raises(ValueError, match="timeout"):
        backend.once(-1, EV_TIMEOUT, _noop, None, timeout=bad)
    with pytest.raises(ValueError, match="delay"):
        backend.loopexit(bad)
    left = []
    backend.foreach_event(left.append)
    assert left == [] and backend.num_events() == 0  # nothing was left behind
    ev.free()


@pytest.mark.parametrize("bad", ["1", b"1", [1]])
def test_non_number_timeouts_are_type_errors(backend, bad):
    ev = Event.timer(backend, _noop)
    with pytest.raises(TypeError, match="timeout"):
        ev.add(bad)
    assert ev.pending() == 0
    ev.free()


@pytest.mark.parametrize("bad", ["3", 3.0, None, b"3"])
def test_non_int_fd_is_a_type_error(backend, bad):
    with pytest.raises(TypeError, match="fd"):
        Event(backend, bad, EV_READ, _noop)
    with pytest.raises(TypeError, match="fd"):
        backend.once(bad, EV_READ, _noop)


def test_non_callable_callback_is_a_type_error(backend):
    with pytest.raises(TypeError, match="callback"):
        Event(backend, 0, EV_READ, "not callable")
    with pytest.raises(TypeError, match="callback"):
        backend.once(-1, EV_TIMEOUT, None)


def test_priority_out_of_range_names_the_priority(backend):
    backend.priority_init(4)
    ev = Event.timer(backend, _noop)
    for bad in (4, 100, -1):
        with pytest.raises(ValueError, match="priority"):
            ev.priority = bad


def test_base_needs_an_event_config(backend):
    with pytest.raises(TypeError, match="config"):
        EventBase("epoll")
