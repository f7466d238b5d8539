"""once(), call_soon / call_soon_threadsafe, and callbacks that raise (regress.c's event_once,
event_once_never, in spirit; asyncio's Handle._run rule for exceptions)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import structlog

from reactorsvc import (EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EVLOOP_NO_EXIT_ON_EMPTY,
                        EVLOOP_NONBLOCK, Event)


def test_once_mixture_of_io_timeout_and_immediate(pair, backend):
    a, b = pair
    called = []

    def on_read(fd, what, arg):
        assert (fd, what, arg) == (b.fileno(), EV_READ, "r")
        called.append(1)

    def on_timeout(fd, what, arg):
        assert (fd, what) == (-1, EV_TIMEOUT)
        called.append(100)

    def immediate(fd, what, arg):
        assert what == EV_TIMEOUT
        called.append(1000)

    backend.once(b.fileno(), EV_READ, on_read, "r")
    backend.once(-1, EV_TIMEOUT, on_timeout, None, timeout=0.02)
    backend.once(-1, EV_TIMEOUT, immediate, None, None)
    backend.once(-1, EV_TIMEOUT, immediate, None, timeout=0)
    a.send(b"this is a test\0")
    a.shutdown(socket.SHUT_WR)
    assert backend.dispatch() == 1
    assert sum(called) == 2101
    assert called[-1] == 100  # the 20 ms timeout runs last


def test_once_that_never_fires_is_cleaned_up_with_the_base(make_base, backend):
    base = make_base(backend.method)
    called = []
    base.once(-1, EV_TIMEOUT, lambda *_: called.append(1), None, timeout=10)
    base.loopexit(0.01)
    assert base.loop() == 0
    assert called == []
    base.free()  # frees the pending once-event (the leak check sees any fd left)


def test_once_with_timeout_none_runs_on_the_next_pass(backend):
    called = []
    backend.once(-1, EV_TIMEOUT, lambda fd, what, arg: called.append((what, arg)), "x")
    backend.loop(EVLOOP_NONBLOCK)
    assert called == [(EV_TIMEOUT, "x")]


def test_once_io_with_timeout_reports_timeout(pair, backend):
    called = []
    backend.once(pair[1].fileno(), EV_READ, lambda fd, what, arg: called.append(what), None,
                 timeout=0.005)
    assert backend.loop() == 1
    assert called == [EV_TIMEOUT]


@pytest.mark.parametrize("events", [EV_READ | EV_PERSIST, EV_SIGNAL])
def test_once_rejects_persist_and_signal(pair, backend, events):
    with pytest.raises(ValueError, match="events"):
        backend.once(pair[0].fileno(), events, lambda *_: None)
    left = []
    backend.foreach_event(left.append)
    assert left == [] and backend.num_events() == 0


def test_call_soon_runs_in_order_with_args(backend):
    calls = []
    backend.call_soon(calls.append, 1)
    backend.call_soon(lambda *args: calls.append(args), 2, "b", None)
    backend.call_soon(calls.append, 3)
    assert backend.loop() == 1
    assert calls == [1, (2, "b", None), 3]


def test_call_soon_from_callbacks_runs_in_the_same_loop(backend):
    calls = []

    def chain(n):
        calls.append(n)
        if n < 50:
            backend.call_soon(chain, n + 1)

    Event.timer(backend, lambda *_: backend.call_soon(chain, 0)).add(0.001)
    assert backend.loop() == 1
    assert calls == list(range(51))


def test_call_soon_threadsafe_wakes_a_waiting_loop(backend):
    main = threading.get_ident()
    ran_in = []

    def stop(tag):
        ran_in.append((tag, threading.get_ident()))
        backend.loopbreak()

    t = threading.Thread(target=lambda: backend.call_soon_threadsafe(stop, "t"))
    t0 = time.monotonic()
    t.start()
    try:
        assert backend.loop(EVLOOP_NO_EXIT_ON_EMPTY) == 0
    finally:
        t.join(5)
    assert ran_in == [("t", main)]
    assert time.monotonic() - t0 < 5


def _is_error_record(entry: dict) -> bool:
    return entry.get("log_level") in ("error", "exception", "critical")


def test_a_raising_callback_is_logged_and_the_loop_goes_on(pair, backend):
    a, b = pair
    after = []

    def boom(fd, what, arg):
        raise ZeroDivisionError("boom in callback")

    bad = Event(backend, a.fileno(), EV_READ | EV_PERSIST, boom)
    b.send(b"x")
    bad.add()
    Event.timer(backend, lambda *_: after.append(1)).add(0.001)
    Event.timer(backend, lambda *_: backend.loopexit()).add(0.01)
    with structlog.testing.capture_logs() as logs:
        assert backend.loop() == 0
    assert after == [1]
    errors = [e for e in logs if _is_error_record(e)]
    assert errors, logs
    # The report carries the traceback (exc_info) or at least the exception's text.
    assert all(e.get("exc_info") or "boom in callback" in repr(e) for e in errors), errors
    assert any(a.fileno() in e.values() for e in errors), errors
    bad.free()


def test_a_raising_call_soon_fn_is_logged_and_the_loop_goes_on(backend):
    calls = []
    backend.call_soon(lambda: 1 / 0)
    backend.call_soon(calls.append, "next")
    with structlog.testing.capture_logs() as logs:
        assert backend.loop() == 1
    assert calls == ["next"]
    assert any(_is_error_record(e) for e in logs), logs


def test_keyboard_interrupt_propagates_and_the_base_stays_usable(backend):
    def interrupt(*_):
        raise KeyboardInterrupt

    Event.timer(backend, interrupt).add(0)
    with pytest.raises(KeyboardInterrupt):
        backend.loop()
    fired = []
    Event.timer(backend, lambda *_: fired.append(1)).add(0)
    assert backend.loop() == 1  # not a "reentrant loop": the first loop really ended
    assert fired == [1]
