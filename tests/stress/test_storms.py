"""Activation storms on every backend: 4 threads x 50,000 activations, on distinct events
(each runs exactly once) and on one shared event (they coalesce, the last one is not lost)."""

from __future__ import annotations

import threading
import time

import pytest

from reactorsvc import EV_TIMEOUT, Event

from ..helpers import wait_for

pytestmark = pytest.mark.timeout(30)


def test_activation_storm_on_distinct_events_runs_each_activation_once(method, make_base, start_loop):
    """4 threads x 50,000 activations: 100 rounds over 500 events each; a round waits for
    its callbacks, so no activation may coalesce and each must run exactly once."""
    base = make_base(method)
    nthreads, nevents, rounds = 4, 500, 100
    per_event = [[0] * nevents for _ in range(nthreads)]
    ran = [0] * nthreads
    target = [0] * nthreads
    round_done = [threading.Event() for _ in range(nthreads)]

    def callback(fd, what, arg):
        t, i = arg
        per_event[t][i] += 1
        ran[t] += 1
        if ran[t] == target[t]:
            round_done[t].set()

    events = [[Event.timer(base, callback, (t, i)) for i in range(nevents)] for t in range(nthreads)]
    start_loop(base)
    failures = []

    def storm(t):
        for r in range(rounds):
            round_done[t].clear()
            target[t] = (r + 1) * nevents
            for ev in events[t]:
                ev.activate(EV_TIMEOUT)
            if not round_done[t].wait(10):
                failures.append((t, r, ran[t], target[t]))
                return

    threads = [threading.Thread(target=storm, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert failures == []
    assert per_event == [[rounds] * nevents for _ in range(nthreads)]


def test_activation_storm_on_one_shared_event_coalesces_but_loses_no_final_activation(
        method, make_base, start_loop):
    base = make_base(method)
    nthreads, activations = 4, 50000
    runs = [0]
    last_start = [0]
    target = [0]
    reached = threading.Event()

    def callback(fd, what, arg):
        last_start[0] = time.monotonic_ns()
        runs[0] += 1
        if runs[0] == target[0]:
            reached.set()

    ev = Event.timer(base, callback)
    loop = start_loop(base)
    last_activate = [0] * nthreads

    def storm(t):
        for _ in range(activations - 1):
            ev.activate(EV_TIMEOUT)
        last_activate[t] = time.monotonic_ns()
        ev.activate(EV_TIMEOUT)

    threads = [threading.Thread(target=storm, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    wait_for(lambda: loop.barrier() and ev.pending() == 0)
    assert 1 <= runs[0] <= nthreads * activations
    # Each activation is served by a run that starts after it: the last one too.
    assert last_start[0] >= max(last_activate)
    before = runs[0]
    target[0] = before + 1
    ev.activate(EV_TIMEOUT)
    assert reached.wait(5)
    assert loop.barrier() and runs[0] == before + 1
