"""Timers longer than the kernel's wait accepts (epoll/poll: INT_MAX ms, ~24.86 days; select and
kqueue: a timespec): the loop clamps its wait, wakes early and waits again (libevent's
MAX_EPOLL_TIMEOUT_MSEC), so a 30-day idle timeout never kills the loop."""

from __future__ import annotations

import threading

import pytest

from reactorsvc import EV_READ, EV_TIMEOUT, EVLOOP_ONCE, Event

THIRTY_DAYS = 30 * 86400.0


@pytest.mark.parametrize("timeout", [THIRTY_DAYS, 1e12], ids=["30-days", "1e12-s"])
def test_a_timer_past_the_kernel_limit_lets_other_events_run(pair, backend, timeout):
    a, b = pair
    fired = []
    timer = Event.timer(backend, lambda fd, what, arg: fired.append("timer"))
    timer.add(timeout)
    Event(backend, a.fileno(), EV_READ, lambda fd, what, arg: fired.append(what)).add()
    b.send(b"x")
    assert backend.loop(EVLOOP_ONCE) == 0  # before the clamp: OverflowError from the wait
    assert fired == [EV_READ]
    assert timer.pending(EV_TIMEOUT) == EV_TIMEOUT
    timer.delete()


@pytest.mark.timeout(10)
def test_a_clamped_wait_is_waited_again_without_firing_early(pair, backend):
    """With the backend's limit made tiny, the loop goes round many times while the 30-day
    timer stays pending, and still runs the I/O event that comes later."""
    a, b = pair
    backend._backend.max_wait = 0.001  # the kernel limit, shrunk so waits end often
    fired = []
    timer = Event.timer(backend, lambda fd, what, arg: fired.append("timer"))
    timer.add(THIRTY_DAYS)
    Event(backend, a.fileno(), EV_READ, lambda fd, what, arg: fired.append(what)).add()
    start = backend.n_iterations
    stop = threading.Event()

    def writer():
        # Write once the loop has woken early a few times (counted, not timed).
        while not stop.is_set() and backend.n_iterations < start + 5:
            stop.wait(0.001)
        b.send(b"x")

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert backend.loop(EVLOOP_ONCE) == 0
    finally:
        stop.set()
        t.join(5)
    assert fired == [EV_READ]
    assert backend.n_iterations >= start + 5
    assert timer.pending(EV_TIMEOUT) == EV_TIMEOUT
    timer.delete()
