"""The timer heap itself, at a size where its layout matters (the compiled build keeps the keys
in a C array beside the list of entries, timers.py): order by (deadline, seq) through pushes,
pops and compactions; next_deadline exact; the garbage collector still sees what it holds."""

from __future__ import annotations

import gc
import random
import weakref

import pytest

from reactorsvc.base.timers import TimerHeap


class Target:
    """A heap target that remembers its place in the expected order."""

    __slots__ = ("key", "__weakref__")

    def __init__(self, key: tuple[float, int]) -> None:
        self.key = key


@pytest.mark.parametrize("seed", [3, 11])
def test_many_timers_pop_by_deadline_then_fifo_through_compactions(seed):
    rng = random.Random(seed)
    heap = TimerHeap()
    live: dict[int, tuple[list, Target]] = {}
    order = 0
    deadlines = [rng.choice((1.0, 2.0, 3.0)) + rng.randrange(50) * 0.01 for _ in range(20000)]
    for deadline in deadlines:
        order += 1
        target = Target((deadline, order))
        live[order] = (heap.schedule(deadline, target), target)
        if rng.random() < 0.6:  # cancel a random earlier one: dead entries pile up, compact
            victim = rng.choice(list(live)) if len(live) > 1 else None
            if victim is not None:
                heap.cancel(live.pop(victim)[0])
    assert len(heap) == len(live)
    want = sorted(target.key for _, target in live.values())
    assert heap.next_deadline() == want[0][0]  # exact: dead entries on top are skipped
    got = []
    for now in (1.2, 1.2, 2.5, 3.49, 10.0):  # several pops, each up to `now`
        batch = heap.pop_expired(now)
        assert all(t.key[0] <= now for t in batch)
        got.extend(t.key for t in batch)
        rest = want[len(got):]
        assert heap.next_deadline() == (rest[0][0] if rest else None)
    assert got == want
    assert len(heap) == 0 and heap.pop_expired(100.0) == []


def test_push_after_pops_and_clear_keeps_the_order():
    heap = TimerHeap()
    for i in range(1000):
        heap.schedule(float(i % 7), Target((float(i % 7), i)))
    first = heap.pop_expired(3.0)
    assert [t.key for t in first] == sorted(t.key for t in first)
    heap.clear()
    assert len(heap) == 0 and heap.next_deadline() is None
    for i in range(100):
        heap.schedule(5.0 - i * 0.01, Target((5.0 - i * 0.01, i)))
    out = heap.pop_expired(10.0)
    assert [t.key for t in out] == sorted(t.key for t in out)


def test_the_heap_holds_its_targets_alive_and_lets_them_go():
    heap = TimerHeap()
    target = Target((1.0, 0))
    ref = weakref.ref(target)
    entry = heap.schedule(1.0, target)
    del target
    gc.collect()
    assert ref() is not None  # the heap holds a reference
    heap.cancel(entry)
    del entry
    heap.pop_expired(2.0)  # the dead entry leaves the heap
    gc.collect()
    assert ref() is None


def test_a_cycle_through_the_heap_is_collected():
    """heap -> entry -> target -> heap: the garbage collector finds the cycle, because the
    heap's references to its entries are in a list it traverses (not only in C memory)."""
    heap = TimerHeap()
    targets = [Target((60.0 + i, i)) for i in range(100)]
    for t in targets:
        t.key = heap  # type: ignore[assignment]  # the back reference that closes the cycle
        heap.schedule(60.0, t)
    refs = [weakref.ref(t) for t in targets]
    del heap, targets, t
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_dropped_base_with_pending_timers_is_collected_with_its_fds():
    """A cycle through the heap (base -> heap -> entry -> event -> callback -> base) is
    collected, and the base's fds with it (the suite's fixture fails a test that leaks one)."""
    from reactorsvc import Event, EventBase

    base = EventBase()
    events = [Event.timer(base, lambda fd, what, arg: base) for _ in range(100)]
    for i, ev in enumerate(events):
        ev.add(60.0 + i)
    refs = [weakref.ref(ev) for ev in events]
    del base, events, ev
    gc.collect()
    assert all(r() is None for r in refs)
