"""Signal events (regress.c's simplesignal, multiplesignal, immediatesignal, signal_timeout,
signal_restore, signal_free_in_callback, signal_while_processing, in spirit)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from reactorsvc import (EV_SIGNAL, EV_TIMEOUT, EVLOOP_NONBLOCK, EVLOOP_ONCE, Event,
                        ReactorError)

from ..helpers import wait_for

SIG = signal.SIGUSR1


@pytest.fixture(autouse=True)
def safe_handlers():
    """A harmless Python handler, so a reactor bug cannot kill the test run with SIGUSR1/2."""
    hits = []

    def handler(signum, frame):
        hits.append(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield handler, hits
    restored_wakeup = signal.set_wakeup_fd(wakeup)
    for s, h in old.items():
        signal.signal(s, h)
    assert restored_wakeup == wakeup, "the reactor left its wake-up fd installed"


def _kill(signum=SIG):
    os.kill(os.getpid(), signum)


def test_callback_runs_once_per_delivered_signal(backend):
    calls = []
    ev = Event.signal(backend, SIG, lambda fd, what, arg: calls.append((fd, what, arg)), "a")
    ev.add()
    backend.loopexit(2.0)  # a bound in case the signal is lost
    _kill()
    assert backend.loop(EVLOOP_ONCE) == 0
    assert calls == [(SIG, EV_SIGNAL, "a")]
    _kill()
    backend.loop(EVLOOP_ONCE)
    assert len(calls) == 2
    ev.delete()


def test_two_deliveries_before_the_loop_give_two_calls(backend):
    calls = []
    ev = Event.signal(backend, SIG, lambda fd, what, arg: calls.append(what))
    ev.add()
    _kill()
    _kill()
    backend.loopexit(2.0)
    backend.loop(EVLOOP_ONCE)
    assert calls == [EV_SIGNAL, EV_SIGNAL]
    ev.delete()


def test_immediate_signal_is_seen_by_a_nonblocking_loop(backend):
    calls = []
    ev = Event.signal(backend, SIG, lambda *_: calls.append(1))
    ev.add()
    _kill()
    assert backend.loop(EVLOOP_NONBLOCK) == 0
    assert calls == [1]
    ev.delete()


@pytest.mark.parametrize("remove", ["free", "delete"])
@pytest.mark.parametrize("owe", ["two-signals", "activate-3"])
def test_removing_the_event_in_its_callback_cancels_the_runs_still_owed(backend, remove, owe):
    calls = []

    def cb(fd, what, arg):
        calls.append(what)
        getattr(ev, remove)()  # cancels the runs still owed (libevent's pncalls)

    ev = Event.signal(backend, SIG, cb)
    ev.add()
    if owe == "activate-3":
        ev.activate(EV_SIGNAL, 3)
    else:
        _kill()
        _kill()
    assert backend.loop() == 1
    assert calls == [EV_SIGNAL]


def test_two_events_on_one_signal_both_run(backend):
    calls = []

    def cb(fd, what, name):
        calls.append(name)
        evs[name].delete()

    evs = {name: Event.signal(backend, SIG, cb, name) for name in ("one", "two")}
    for ev in evs.values():
        ev.add()
    assert backend.num_events() == 2
    _kill()
    assert backend.loop() == 1
    assert sorted(calls) == ["one", "two"]


def test_add_delete_add_still_delivers(backend):
    calls = []
    ev = Event.signal(backend, SIG, lambda *_: (calls.append(1), ev.delete()))
    ev.add()
    ev.delete()
    ev.add()
    _kill()
    assert backend.loop() == 1
    assert calls == [1]


def test_previous_handler_is_restored_after_delete(backend, safe_handlers):
    handler, hits = safe_handlers
    ev = Event.signal(backend, SIG, lambda *_: None)
    ev.add()
    assert signal.getsignal(SIG) is not handler
    ev.delete()
    assert signal.getsignal(SIG) is handler
    _kill()
    assert hits == [SIG]


def test_previous_handler_is_restored_when_the_base_is_freed(make_base, backend, safe_handlers):
    handler, hits = safe_handlers
    base = make_base(backend.method)
    Event.signal(base, SIG, lambda *_: None).add()
    assert signal.getsignal(SIG) is not handler
    base.free()
    assert signal.getsignal(SIG) is handler


def test_signal_event_counts_and_keeps_the_loop_from_returning_1(backend):
    ev = Event.signal(backend, signal.SIGUSR2, lambda *_: None)
    ev.add()
    assert backend.num_events() == 1
    assert ev.pending(EV_SIGNAL) == EV_SIGNAL
    assert backend.loop(EVLOOP_NONBLOCK) == 0
    ev.delete()
    assert backend.num_events() == 0
    assert backend.loop() == 1


def test_signal_event_with_a_timeout_reports_ev_timeout(backend):
    calls = []
    ev = Event.signal(backend, SIG, lambda fd, what, arg: (calls.append(what), ev.delete()))
    ev.add(0.002)
    assert backend.loop() == 1
    assert calls == [EV_TIMEOUT]


def test_signal_raised_again_from_its_own_callback(backend):
    calls = []

    def cb(*_):
        calls.append(1)
        if len(calls) < 5:
            _kill()
        else:
            backend.loopexit()

    ev = Event.signal(backend, SIG, cb)
    ev.add()
    Event.timer(backend, lambda *_: _kill()).add(0)
    backend.loopexit(2.0)
    assert backend.loop() == 0
    assert len(calls) == 5
    ev.delete()


def test_adding_a_signal_event_outside_the_main_thread_is_a_reactor_error(backend):
    ev = Event.signal(backend, SIG, lambda *_: None)
    errors = []

    def worker():
        try:
            ev.add()
        except Exception as exc:  # noqa: BLE001 -- the test inspects whatever was raised
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ReactorError), errors
    assert "main thread" in str(errors[0])
    assert ev.pending() == 0
    assert backend.num_events() == 0
    ev.free()


def test_deleting_a_signal_event_outside_the_main_thread_is_a_reactor_error(backend):
    ev = Event.signal(backend, SIG, lambda *_: None)
    ev.add()
    errors = []

    def worker():
        try:
            ev.delete()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ReactorError), errors
    assert ev.pending(EV_SIGNAL) == EV_SIGNAL  # still there
    ev.delete()


def test_a_signal_event_activated_with_ncalls_3_runs_3_times(backend):
    calls = []
    ev = Event.signal(backend, SIG, lambda fd, what, arg: calls.append(what))
    ev.activate(EV_SIGNAL, 3)  # not added: libevent runs it ncalls times all the same
    backend.loop(EVLOOP_NONBLOCK)
    assert calls == [EV_SIGNAL] * 3
    ev.add()
    ev.activate(EV_SIGNAL, 3)
    backend.loop(EVLOOP_NONBLOCK)
    assert calls == [EV_SIGNAL] * 6
    ev.delete()


def test_ncalls_means_nothing_for_a_non_signal_event(backend):
    calls = []
    ev = Event.timer(backend, lambda fd, what, arg: calls.append(what))
    ev.activate(EV_TIMEOUT, 3)
    backend.loop(EVLOOP_NONBLOCK)
    assert calls == [EV_TIMEOUT]


def test_two_deliveries_to_a_non_persistent_signal_event_are_not_merged(backend):
    calls = []
    ev = Event(backend, SIG, EV_SIGNAL, lambda fd, what, arg: calls.append(what))
    ev.add()
    _kill()
    _kill()
    backend.loopexit(2.0)  # a bound in case a signal is lost
    backend.loop(EVLOOP_ONCE)
    assert calls == [EV_SIGNAL, EV_SIGNAL]  # evsig counts ncaught: one run per delivery


@pytest.mark.timeout(15)
def test_a_signal_event_added_while_the_loop_sleeps_in_another_thread_is_seen(backend):
    """poll and select see the new signal socket only once the loop wakes: the add must wake it
    (the internal event's wake-up used to be dropped)."""
    calls = []
    done = threading.Event()

    def on_signal(fd, what, arg):
        calls.append(what)
        backend.loopbreak()

    keep = Event.timer(backend, lambda *_: None)
    keep.add(30)  # the loop waits on this until something wakes it
    t = threading.Thread(target=lambda: (backend.loop(), done.set()))
    t.start()
    ev = Event.signal(backend, SIG, on_signal)
    try:
        wait_for(lambda: backend.is_running() and backend.n_iterations >= 1, what="the loop to wait")
        ev.add()  # main thread, while the loop waits in its backend in thread t
        _kill()
        assert done.wait(10), "the loop never saw the signal"
        assert calls == [EV_SIGNAL]
    finally:
        backend.loopbreak()
        t.join(10)
    ev.delete()
    keep.delete()
