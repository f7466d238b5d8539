"""Corners of libevent 2.1's semantics (DESIGN.md): pending() after free(), once() arguments and
its 0 timeout with I/O, got_break()/got_exit() after an EVLOOP_ONCE pass, fds no backend can
watch."""

from __future__ import annotations

import os
import resource

import pytest

from reactorsvc import (EV_CLOSED, EV_READ, EV_TIMEOUT, EV_WRITE, EVLOOP_NONBLOCK, EVLOOP_ONCE,
                        Event, ReactorError)


def test_pending_after_free_is_a_reactor_error(backend):
    ev = Event.timer(backend, lambda *_: None)
    ev.add(10)
    ev.free()
    with pytest.raises(ReactorError, match="after free"):
        ev.pending()
    assert "freed" in repr(ev)


def test_once_with_no_events_is_a_value_error_naming_events(backend):
    with pytest.raises(ValueError, match="^events: "):
        backend.once(-1, 0, lambda *_: None)
    with pytest.raises(ValueError, match="^events: "):
        backend.once(-1, 0, lambda *_: None, None, 1.0)
    assert backend.num_events() == 0


@pytest.mark.parametrize("events", [EV_READ, EV_READ | EV_TIMEOUT])
def test_once_with_io_and_a_zero_timeout_reports_both_bits_as_add_0_does(pair, backend, events):
    a, b = pair
    b.send(b"x")
    got = []
    Event(backend, a.fileno(), EV_READ, lambda fd, what, arg: got.append(("add", what))).add(0)
    backend.once(a.fileno(), events, lambda fd, what, arg: got.append(("once", what)), None, 0)
    assert backend.loop(EVLOOP_ONCE) == 0
    assert sorted(got) == [("add", EV_READ | EV_TIMEOUT), ("once", EV_READ | EV_TIMEOUT)]
    assert backend.num_events() == 0


def test_once_with_a_pure_zero_timeout_still_runs_on_the_next_pass(backend):
    got = []
    backend.once(-1, EV_TIMEOUT, lambda fd, what, arg: got.append(what), None, 0)
    assert backend.loop(EVLOOP_ONCE | EVLOOP_NONBLOCK) == 0
    assert got == [EV_TIMEOUT]


@pytest.mark.parametrize("flags", [EVLOOP_ONCE, EVLOOP_ONCE | EVLOOP_NONBLOCK, EVLOOP_NONBLOCK])
def test_got_break_stays_true_after_a_break_in_the_last_callback(backend, flags):
    backend.once(-1, EV_TIMEOUT, lambda *_: backend.loopbreak())
    assert backend.loop(flags) == 0
    assert backend.got_break() and not backend.got_exit()


@pytest.mark.parametrize("flags", [EVLOOP_ONCE, EVLOOP_ONCE | EVLOOP_NONBLOCK, EVLOOP_NONBLOCK])
def test_got_exit_stays_true_after_an_exit_in_the_last_callback(backend, flags):
    backend.once(-1, EV_TIMEOUT, lambda *_: backend.loopexit())
    assert backend.loop(flags) == 0
    assert backend.got_exit() and not backend.got_break()
    backend.once(-1, EV_TIMEOUT, lambda *_: None)
    backend.loop(flags)
    assert not backend.got_exit()  # a new loop() starts afresh


@pytest.mark.parametrize("fd", [2**31, 2**63, 2**64])
def test_an_fd_larger_than_a_c_int_is_a_value_error_naming_fd(backend, fd):
    ev = Event(backend, fd, EV_READ, lambda *_: None)
    with pytest.raises(ValueError, match="^fd: "):
        ev.add()
    assert backend.num_events() == 0 and not ev.pending()


def test_an_fd_past_the_process_fd_limit_is_a_value_error_naming_fd(backend):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= 2**31:
        pytest.skip("no finite fd limit")
    ev = Event(backend, soft + 5, EV_WRITE, lambda *_: None)
    with pytest.raises(ValueError, match="^fd: "):
        ev.add()
    assert backend.num_events() == 0


def test_a_negative_fd_is_a_value_error_naming_fd(backend):
    with pytest.raises(ValueError, match="^fd: "):
        Event(backend, -3, EV_READ | EV_CLOSED, lambda *_: None)


def test_a_closed_fd_below_the_limit_is_still_the_kernels_oserror(backend):
    fd = os.dup(0)
    os.close(fd)
    ev = Event(backend, fd, EV_READ, lambda *_: None)
    with pytest.raises(OSError):
        ev.add()
    assert backend.num_events() == 0


def test_select_refuses_an_fd_past_fd_setsize_naming_fd(make_base):
    base = make_base("select")
    fd = os.dup2(0, 1500) if resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 1500 else None
    if fd is None:
        pytest.skip("fd limit below 1500")
    try:
        with pytest.raises(ValueError, match="^fd: 1500 .*FD_SETSIZE"):
            Event(base, fd, EV_READ, lambda *_: None).add()
    finally:
        os.close(fd)
