"""The base lock (reactorsvc/base/lock.py): BaseLock keeps the RLock semantics the base relies
on, in whichever build runs (the compiled class, or the pure reference class), and each build
gives its bases the lock it says it does."""

from __future__ import annotations

import threading
import time

import pytest

import reactorsvc
from reactorsvc.base.lock import BaseLock, new_lock

BOUND = 10.0  # seconds any wait in these tests may take before the test fails


@pytest.fixture(params=["BaseLock", "RLock"])
def lock(request):
    """Each test runs on BaseLock and, as the oracle, on threading.RLock."""
    return BaseLock() if request.param == "BaseLock" else threading.RLock()


def test_each_build_gives_its_bases_its_lock():
    base = reactorsvc.EventBase()
    try:
        expected = BaseLock if reactorsvc.COMPILED else type(threading.RLock())
        assert type(new_lock()) is expected
        assert type(base._lock) is expected
    finally:
        base.free()


def test_reentrant_and_the_last_release_unlocks(lock):
    assert lock.acquire() is True
    with lock:
        assert lock._is_owned()
    assert lock._is_owned()
    lock.release()
    assert not lock._is_owned()
    with pytest.raises(RuntimeError):
        lock.release()


def test_only_the_owner_releases(lock):
    lock.acquire()
    errors = []

    def other() -> None:
        assert not lock._is_owned()
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(BOUND)
    assert len(errors) == 1
    lock.release()


def test_excludes_other_threads_until_every_level_is_released(lock):
    lock.acquire()
    lock.acquire()
    holding = threading.Event()
    got = threading.Event()

    def other() -> None:
        with lock:
            got.set()
            holding.wait(BOUND)

    t = threading.Thread(target=other)
    t.start()
    lock.release()
    assert not got.wait(0.05)  # still held one level deep: the other thread cannot have it
    lock.release()
    assert got.wait(BOUND)
    assert not lock._is_owned()
    holding.set()
    t.join(BOUND)
    with lock:  # free again
        pass


def test_counts_stay_exact_under_contention(lock):
    # Each critical section reads, yields the CPU (time.sleep(0) lets another thread run, with
    # or without a GIL), then writes: without mutual exclusion updates are lost and two threads
    # are inside at once. On 3.13t the threads run truly in parallel.
    nthreads, rounds = 4, 1000
    counter = [0]
    inside = [0]
    overlaps = []
    start = threading.Barrier(nthreads)

    def work() -> None:
        start.wait(BOUND)
        for _ in range(rounds):
            with lock:
                with lock:
                    inside[0] += 1
                    if inside[0] != 1:
                        overlaps.append(inside[0])
                    value = counter[0]
                    time.sleep(0)
                    counter[0] = value + 1
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert not any(t.is_alive() for t in threads)
    assert (counter[0], overlaps) == (nthreads * rounds, [])
    assert not lock._is_owned()


def test_condition_notify_from_another_thread_wakes_a_waiter(lock):
    cond = threading.Condition(lock)
    items = []

    def producer() -> None:
        for i in range(100):
            with cond:
                items.append(i)
                cond.notify()

    t = threading.Thread(target=producer)
    with cond:
        t.start()
        assert cond.wait_for(lambda: len(items) == 100, BOUND)
        assert lock._is_owned()
    t.join(BOUND)
    with cond:  # a timed-out wait gives back False and the lock
        assert cond.wait(0.001) is False
        assert lock._is_owned()


def test_baselock_refuses_non_blocking_and_timed_acquire():
    # The base never asks for either (module docstring): asking fails loudly, never silently blocks.
    lock = BaseLock()
    with pytest.raises(TypeError):
        lock.acquire(False)
    with pytest.raises(TypeError):
        lock.acquire(timeout=1.0)
    assert not lock._is_owned()


def test_a_forked_child_keeps_the_forking_threads_levels(lock, run_forked):
    # The base's at-fork hook (lifecycle.py) replaces the lock only when another thread may
    # have held it; a lock the forking thread holds stays its own in the child, every level.
    lock.acquire()
    lock.acquire()
    try:
        def child() -> int:
            if not lock._is_owned():
                return 10
            lock.release()
            if not lock._is_owned():
                return 11
            lock.release()
            if lock._is_owned():
                return 12
            with lock:
                return 0

        assert run_forked(child) == 0
    finally:
        lock.release()
        lock.release()


def test_condition_wait_releases_every_level_and_restores_them(lock):
    cond = threading.Condition(lock)
    ready = threading.Event()
    seen = []

    def notifier() -> None:
        ready.wait(BOUND)
        with cond:  # only possible if wait() released both levels
            seen.append("in")
            cond.notify_all()

    t = threading.Thread(target=notifier)
    t.start()
    with lock:
        with cond:
            ready.set()
            assert cond.wait_for(lambda: seen, BOUND)
            assert lock._is_owned()
        assert lock._is_owned()  # the outer level is back too
    assert not lock._is_owned()
    t.join(BOUND)


def test_condition_refuses_a_lock_not_held(lock):
    cond = threading.Condition(lock)
    with pytest.raises(RuntimeError):
        cond.wait(0)
    with pytest.raises(RuntimeError):
        cond.notify_all()


def test_repr_shows_the_count_to_the_owner_only():
    lock = BaseLock()
    assert repr(lock).startswith("<unlocked ") and "count" not in repr(lock)
    with lock:
        with lock:
            assert repr(lock).startswith("<locked ") and repr(lock).endswith(" count=2>")
            seen = []
            t = threading.Thread(target=lambda: seen.append(repr(lock)))
            t.start()
            t.join(BOUND)
            assert seen[0].startswith("<locked ") and "count" not in seen[0]
