"""Randomised timer-heap invariants through the public API (regress_minheap.c's idea, with a
seed): after random add / re-add / delete churn, timers fire by deadline, FIFO among equal
deadlines, each exactly once; and add/delete churn does not grow memory without bound."""

from __future__ import annotations

import itertools
import random
import tracemalloc

import pytest

from reactorsvc import EV_TIMEOUT, Event

N_EVENTS = 150
N_OPS = 1500
CHOICES = (0.0, 0.002, 0.004, 0.006, 0.008, 0.010)  # few values: many equal deadlines


def _churn(rng, events, expected, seq, now):
    """Random ops on pure timers; `expected[i] = (deadline, seq of the add that set it)`."""
    for _ in range(N_OPS):
        i = rng.randrange(len(events))
        ev = events[i]
        op = rng.random()
        if op < 0.55:
            current = expected.get(i, (None,))[0]
            options = [t for t in CHOICES if current is None or abs(now + t - current) > 1e-9]
            t = rng.choice(options)
            ev.add(t)
            assert ev.deadline == pytest.approx(now + t, abs=1e-9)
            expected[i] = (ev.deadline, next(seq))
        elif op < 0.70:
            before = ev.deadline
            if i in expected:
                ev.add()  # None keeps the pending deadline (and its place)
                assert ev.deadline == before
        else:
            ev.delete()
            expected.pop(i, None)
            assert ev.deadline is None and ev.pending() == 0


@pytest.mark.parametrize("seed", [1, 7, 2024])
def test_random_churn_fires_by_deadline_fifo_and_once(backend, seed):
    rng = random.Random(seed)
    fired = []
    late = []

    def on_fire(fd, what, i):
        assert what == EV_TIMEOUT
        fired.append(i)
        if backend.now() < expected[i][0]:
            late.append(i)  # fired before its deadline

    events = [Event.timer(backend, on_fire, i) for i in range(N_EVENTS)]
    expected: dict[int, tuple[float, int]] = {}
    seq = itertools.count()
    # Churn inside a callback: the cached now() is fixed there, so equal timeouts give equal
    # deadlines, and FIFO order among them is observable.
    starter = Event.timer(backend, lambda *_: _churn(rng, events, expected, seq, backend.now()))
    starter.add(0)
    assert backend.loop() == 1
    want = [i for i, _ in sorted(expected.items(), key=lambda kv: kv[1])]
    assert len(fired) == len(set(fired)), "an event fired twice"
    assert fired == want
    assert late == []
    assert backend.num_events() == 0


def test_readded_timer_fires_once_at_its_new_deadline(backend):
    rng = random.Random(5)
    fired = []
    ev = Event.timer(backend, lambda *_: fired.append(backend.now()))
    for _ in range(200):
        ev.add(rng.choice((0.001, 0.5, 2.0)))
    ev.add(0.003)
    deadline = ev.deadline
    assert backend.loop() == 1
    assert len(fired) == 1 and fired[0] >= deadline


def test_add_delete_churn_keeps_memory_bounded(make_base):
    base = make_base()
    ev = Event.timer(base, lambda *_: None)
    others = [Event.timer(base, lambda *_: None) for _ in range(20)]
    for i, other in enumerate(others):
        other.add(100 + i)  # a non-trivial heap that stays
    tracemalloc.start()
    try:
        for i in range(3000):  # warm-up: let any compaction threshold settle
            ev.add(10 + (i % 997) * 1e-3)
            if i % 3 == 0:
                ev.delete()
        start = tracemalloc.get_traced_memory()[0]
        for i in range(30000):
            ev.add(10 + (i % 997) * 1e-3)  # a reschedule leaves a dead entry behind
            if i % 3 == 0:
                ev.delete()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # 30,000 dead (deadline, seq, event) entries would be megabytes.
    assert grown < 400_000, f"memory grew by {grown} bytes under add/delete churn"
    assert base.num_events() == 21
    ev.free()
    for other in others:
        other.free()
