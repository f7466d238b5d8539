"""Deadlines: a min-heap of entries ordered by (deadline, seq), plus common-timeout FIFOs.

An entry is a [deadline, seq, target] list so it can be cancelled in place (target set to
None) instead of searched for in the heap. Dead entries are skipped when they reach the top
and the heap is rebuilt when they outnumber the live ones, so memory stays bounded under
add/delete churn. `seq` breaks ties first-in first-out.

The heap has one layout per build, the same order in both (entry[0] is the deadline either way,
so the loop's `heap[0][0] <= now` reads both):
- pure: `_heap` holds (deadline, seq, entry) tuples for heapq, which compares tuples faster
  than lists (~0.3 µs less per pop on a 200,000-timer heap);
- compiled: `_heap` holds the entries themselves and a C array beside it holds each one's
  (deadline, seq) as C numbers, moved in step (timers.pxd). The sift compares doubles in one
  contiguous array instead of chasing tuples and float objects across the heap, which is
  where a big heap's time went (a pop: ~2 µs with heapq, ~0.4 µs here, 200,000 timers). The
  list keeps the references, so the garbage collector still sees every entry.

A common timeout (libevent's event_base_init_common_timeout) is a FIFO of entries that all
share one duration: they are added in deadline order, so only the queue's head needs a heap
entry. That makes add/delete O(1) for the thousands of connections that share an idle timeout.

Not thread-safe: the owning EventBase calls it with its lock held.
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any

try:
    import cython
except ImportError:  # a pure install without Cython: see reactorsvc/_nocython.py
    from .. import _nocython as cython

_COMPACT_MIN = 64


class CommonTimeout(float):
    """The value init_common_timeout() returns: a float (the duration) tied to one FIFO."""

    __slots__ = ("queue",)


class CommonQueue:
    """Entries of one common duration, in deadline order, with one heap entry for the head."""

    __slots__ = ("duration", "entries", "dead", "heap_entry")

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.entries: deque[list] = deque()
        self.dead = 0
        self.heap_entry: list | None = None

    def insert(self, entry: list) -> None:
        entries = self.entries
        if not entries or entries[-1][0] <= entry[0]:
            entries.append(entry)
            return
        # A persistent event rescheduled at old deadline + interval can land before the
        # tail: walk back from the end, where it almost always belongs.
        i = len(entries)
        while i > 0 and entries[i - 1][0] > entry[0]:
            i -= 1
        entries.insert(i, entry)


class TimerHeap:
    """The base's deadlines. Targets are Events; `schedule` returns the entry to cancel."""

    def __init__(self) -> None:
        self._heap: list = []  # the layout of this build: the module docstring
        self._dead = 0
        self._seq = count()
        self._common: dict[float, CommonQueue] = {}

    def __dealloc__(self) -> None:
        # Compiled build only (a cdef class's finalizer; pure Python never calls it).
        if cython.compiled:
            _keys_free(self)

    def __len__(self) -> int:
        return len(self._heap) - self._dead

    def common_timeout(self, duration: float) -> CommonTimeout:
        """The CommonTimeout for `duration`, the same object for the same duration."""
        queue = self._common.get(duration)
        if queue is None:
            queue = self._common[duration] = CommonQueue(duration)
        value = CommonTimeout(duration)
        value.queue = queue
        return value

    def schedule(self, deadline: float, target: Any, queue: CommonQueue | None = None) -> list:
        # Each build's push written out here: a helper call per timer costs the pure build ~8 %
        # of a timer (benchmarks/chain.py timers).
        if cython.compiled:
            self._cseq += 1
            entry = [deadline, self._cseq, target]
            if queue is None:
                _keys_push(self, deadline, self._cseq, entry)
                return entry
        else:
            seq = next(self._seq)
            entry = [deadline, seq, target]
            if queue is None:
                heappush(self._heap, (deadline, seq, entry))
                return entry
        queue.insert(entry)
        head = queue.entries[0]
        if queue.heap_entry is None or queue.heap_entry[0] > head[0]:
            self._point_heap_at(queue, head[0])
        entry.append(queue)  # 4th item: the queue, so cancel knows where the entry lives
        return entry

    def _point_heap_at(self, queue: CommonQueue, deadline: float) -> None:
        if queue.heap_entry is not None:
            self._cancel_heap_entry(queue.heap_entry)
        queue.heap_entry = self.schedule(deadline, queue)  # a plain entry whose target is the queue

    def cancel(self, entry: list) -> None:
        """Forget a scheduled entry (lazily)."""
        if len(entry) == 4:
            entry[2] = None
            queue = entry[3]
            queue.dead += 1
            if queue.dead > _COMPACT_MIN and queue.dead * 2 > len(queue.entries):
                queue.entries = deque([e for e in queue.entries if e[2] is not None])
                queue.dead = 0
            return
        self._cancel_heap_entry(entry)

    def _cancel_heap_entry(self, entry: list) -> None:
        entry[2] = None
        self._dead += 1
        heap = self._heap
        if self._dead > _COMPACT_MIN and self._dead * 2 > len(heap):
            # In place: the loop holds an alias of the list.
            if cython.compiled:
                _keys_compact(self)
            else:
                heap[:] = [e for e in heap if e[2][2] is not None]
                heapify(heap)
            self._dead = 0

    def next_deadline(self) -> float | None:
        """The earliest live deadline (a common queue's may be early, never late)."""
        heap = self._heap
        if cython.compiled:
            while heap and heap[0][2] is None:
                _keys_pop(self)
                self._dead -= 1
        else:
            while heap and heap[0][2][2] is None:
                heappop(heap)
                self._dead -= 1
        return heap[0][0] if heap else None

    def pop_expired(self, now: float) -> list:
        """Remove and return the targets whose deadline is <= now, earliest first."""
        heap = self._heap
        out = []
        while heap:
            top = heap[0][0]  # compiled: a C double (timers.pxd), no float object per test
            if top > now:
                break
            entry = _keys_pop(self) if cython.compiled else heappop(heap)[2]
            target = entry[2]
            if target is None:
                self._dead -= 1
            elif type(target) is CommonQueue:
                self._expire_common(target, now, out)
            else:
                entry[2] = None
                out.append(target)
        return out

    def _expire_common(self, queue: CommonQueue, now: float, out: list) -> None:
        # One entry per heap pop, so expiry order interleaves exactly with other deadlines.
        queue.heap_entry = None
        entries = queue.entries
        while entries and entries[0][2] is None:
            entries.popleft()
            queue.dead -= 1
        head = entries[0][0] if entries else now + 1.0  # none left: not due (a C double: timers.pxd)
        if head <= now:
            entry = entries.popleft()
            out_target = entry[2]
            entry[2] = None
            out.append(out_target)
            while entries and entries[0][2] is None:
                entries.popleft()
                queue.dead -= 1
        if entries:
            self._point_heap_at(queue, entries[0][0])

    def targets(self) -> list:
        """The live scheduled targets (events), in no particular order."""
        if cython.compiled:
            in_heap = [entry[2] for entry in self._heap]
        else:
            in_heap = [item[2][2] for item in self._heap]
        out = [t for t in in_heap if t is not None and type(t) is not CommonQueue]
        for queue in self._common.values():
            out.extend(e[2] for e in queue.entries if e[2] is not None)
        return out

    def clear(self) -> None:
        self._heap.clear()
        self._dead = 0
        for queue in self._common.values():
            queue.entries.clear()
            queue.dead = 0
            queue.heap_entry = None
