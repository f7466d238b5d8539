"""EventBase.set_exception_handler() (asyncio's name and shape) and the public state queries
is_closed(), is_running(), in_loop_thread()."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from reactorsvc import EV_TIMEOUT, EVLOOP_NONBLOCK, Event


def _boom(*_):
    raise ZeroDivisionError("boom")


def test_a_raising_event_callback_reaches_the_handler_with_its_context(backend):
    got = []
    backend.set_exception_handler(lambda base, context: got.append((base, context)))
    ev = Event.timer(backend, _boom, "arg")
    ev.add(0)
    after = []
    Event.timer(backend, lambda *_: after.append(1)).add(0)
    backend.loop(EVLOOP_NONBLOCK)
    assert after == [1]  # the loop went on
    [(base, context)] = got
    assert base is backend
    assert isinstance(context["exception"], ZeroDivisionError)
    assert context["event"] is ev and context["callback"] is _boom
    assert context["what"] == EV_TIMEOUT and context["message"] == "event callback failed"


def test_call_soon_and_finalize_errors_reach_the_handler(make_base, backend):
    got = []
    backend.set_exception_handler(lambda base, context: got.append(context))
    backend.call_soon(_boom)
    backend.loop(EVLOOP_NONBLOCK)
    ev = Event.timer(backend, lambda *_: None)
    ev.add(10)
    ev.finalize(_boom)
    backend.free()  # pending finalizers run here
    assert [c["message"] for c in got] == ["call_soon() callback failed",
                                           "finalize() callback failed"]
    assert all(c["callback"] is _boom for c in got)


def test_none_restores_the_default_structlog_report(backend):
    handler = lambda base, context: None  # noqa: E731
    backend.set_exception_handler(handler)
    assert backend.get_exception_handler() is handler
    backend.set_exception_handler(None)
    assert backend.get_exception_handler() is None
    Event.timer(backend, _boom).add(0)
    with capture_logs() as logs:
        backend.loop(EVLOOP_NONBLOCK)
    [entry] = [e for e in logs if e["event"] == "callback_failed"]
    assert entry["log_level"] == "error" and isinstance(entry["exc_info"], ZeroDivisionError)
    assert "ev" in entry and entry["what"] == EV_TIMEOUT


def test_a_raising_handler_is_reported_by_the_default_one(backend):
    def broken(base, context):
        raise RuntimeError("handler bug")

    backend.set_exception_handler(broken)
    with capture_logs() as logs:
        backend.call_exception_handler({"message": "something failed"})
    [entry] = [e for e in logs if e["event"] == "callback_failed"]
    assert entry["message"] == "the exception handler failed"
    assert entry["context"] == "something failed"
    assert isinstance(entry["exc_info"], RuntimeError)


def test_system_exit_from_a_callback_still_propagates_past_the_handler(backend):
    got = []
    backend.set_exception_handler(lambda base, context: got.append(context))

    def leave(*_):
        raise SystemExit(4)

    Event.timer(backend, leave).add(0)
    with pytest.raises(SystemExit):
        backend.loop()
    assert got == []


def test_a_handler_that_is_not_callable_is_a_type_error(backend):
    with pytest.raises(TypeError, match="^handler must be callable"):
        backend.set_exception_handler("log it")


def test_is_closed_is_running_and_in_loop_thread(make_base, backend):
    assert not backend.is_closed() and not backend.is_running()
    assert not backend.in_loop_thread()
    seen = []
    other = []

    def probe(*_):
        seen.append((backend.in_loop_thread(), backend.is_running()))
        t = threading.Thread(target=lambda: other.append(
            (backend.in_loop_thread(), backend.is_running())))
        t.start()
        t.join(5)

    Event.timer(backend, probe).add(0)
    backend.loop()
    assert seen == [(True, True)]
    assert other == [(False, True)]
    assert not backend.in_loop_thread() and not backend.is_running()
    backend.free()
    assert backend.is_closed()
