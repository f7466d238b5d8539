#!/usr/bin/env python3
"""Cross-thread posts into a loop running in another thread, and the cost of the base lock.

1. throughput: a producer thread posts K items as fast as it can into a loop that is idle
   (asleep in the backend) or busy (a ring of socketpairs with bytes circulating, so it
   polls and runs I/O callbacks non-stop). Posts/s at the producer and delivered/s (first
   post to last callback). Posts: reactorsvc's call_soon_threadsafe, Event.activate of a
   ready-made event, Event(...).add() of a new read-ready event, Event.timer(...).add(0);
   asyncio's and uvloop's call_soon_threadsafe; a bare deque + eventfd loop (the floor).
2. latency: one post at a time, time from just before the post to the callback's start;
   p50 and p99 over all samples of the interleaved runs.
3. the lock: chain (N=1000, A=1) and active dispatch on a default (locked) base vs NOLOCK.

Run: python benchmarks/crossthread.py [--quick] [--repeats R] [--only throughput|latency|lock]
"""

from __future__ import annotations

import os
import select
import statistics
import sys
import threading
from collections import deque
from functools import partial
from time import perf_counter, sleep
from typing import Callable

from _common import (STAT_HEADERS, Ring, arg_parser, asyncio_kinds, banner, interleave, interleave_raw,
                     new_asyncio_loop, positive, print_table, raise_nofile, stat_rows)
from chain import REF, active_reactorsvc, chain_reactorsvc

from reactorsvc import (EV_PERSIST, EV_READ, EV_TIMEOUT, EVLOOP_NO_EXIT_ON_EMPTY, Event, EventBase)

OPS = ("call_soon_threadsafe", "activate", "add read event", "add timer event")
_FD_POOL = 256  # dup'd read ends of one readable pipe: each add watches "a new fd"
_WAIT = 60.0  # no run takes this long; a loop that never delivers is a bug, not a slow run


class Sink:
    """Counts callbacks (any calling convention) and notes when the expected one arrives."""

    def __init__(self) -> None:
        self.count = self.expect = 0
        self.t_last = 0.0
        self.done = threading.Event()

    def arm(self, expect: int) -> None:
        self.count, self.expect = 0, expect
        self.done.clear()

    def hit(self, *args: object) -> None:
        self.count += 1
        if self.count == self.expect:
            self.t_last = perf_counter()
            self.done.set()

    def wait(self, what: str) -> None:
        if not self.done.wait(_WAIT):
            raise RuntimeError(f"{what}: {self.count} of {self.expect} callbacks after {_WAIT} s")


def _spin(fd: int, wfd: int) -> None:
    os.read(fd, 1)
    os.write(wfd, b"e")


class Target:
    """A loop in its own thread (a context manager). Subclasses build, run and stop it, and
    make `post(k)` (k posts, from the caller's thread) for an op; `sink` counts deliveries."""

    def __init__(self, op: str, busy: bool) -> None:
        self.op, self.busy, self.sink = op, busy, Sink()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"loop-{op}")

    def __enter__(self) -> Target:
        self.ring = Ring(8) if self.busy else None
        self._thread.start()
        self._ready.wait(_WAIT)
        if self._error is not None:
            self._thread.join(_WAIT)
            if self.ring is not None:
                self.ring.close()
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._thread.join(_WAIT)
        if self.ring is not None:
            self.ring.close()

    def _main(self) -> None:
        try:
            self.build()
            if self.ring is not None:
                self.ring.kick(2)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.run(self._ready.set)

    def build(self) -> None: ...
    def run(self, ready: Callable[[], object]) -> None: ...
    def stop(self) -> None: ...
    def poster(self) -> Callable[[int], float | None]:
        """post(k): k posts; returns the time the posting began when it prepared objects first."""


class ReactorTarget(Target):
    def build(self) -> None:
        self.base = EventBase()
        if self.ring is not None:
            for rfd, wfd in zip(self.ring.rfds, self.ring.next_w):
                Event(self.base, rfd, EV_READ | EV_PERSIST, lambda fd, what, w: _spin(fd, w), wfd).add()
        if self.op == "add read event":
            r, w = os.pipe()
            os.write(w, b"x")  # never read: every dup stays readable
            self.fds = [r, w] + [os.dup(r) for _ in range(_FD_POOL)]

    def run(self, ready: Callable[[], object]) -> None:
        self.base.call_soon(ready)
        try:
            self.base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
        finally:
            self.base.free()
            for fd in getattr(self, "fds", ()):
                os.close(fd)

    def stop(self) -> None:
        self.base.loopbreak()

    def poster(self) -> Callable[[int], float | None]:
        base, hit, op = self.base, self.sink.hit, self.op
        if op == "call_soon_threadsafe":
            return partial(_post_csts, base.call_soon_threadsafe, hit)
        if op == "activate":
            return partial(_post_activate, base, hit)
        if op == "add timer event":
            return partial(_post_add_timer, base, hit)
        return partial(_post_add_read, base, hit, self.fds[2:])


def _post_csts(csts: Callable, fn: Callable, k: int) -> None:
    for _ in range(k):
        csts(fn)


def _post_activate(base: EventBase, hit: Callable, k: int) -> float:
    events = [Event.timer(base, hit) for _ in range(k)]  # distinct: activations don't coalesce
    t0 = perf_counter()
    for ev in events:
        ev.activate(EV_TIMEOUT)
    return t0  # the producer's clock starts after the events exist


def _post_add_timer(base: EventBase, hit: Callable, k: int) -> None:
    timer = Event.timer
    for _ in range(k):
        timer(base, hit).add(0.0)


def _post_add_read(base: EventBase, hit: Callable, fds: list[int], k: int) -> float:
    seq = (fds * (k // len(fds) + 1))[:k]
    t0 = perf_counter()
    for fd in seq:
        Event(base, fd, EV_READ, hit).add()
    return t0


class AsyncioTarget(Target):
    def build(self) -> None:
        self.loop = new_asyncio_loop(self.op)
        if self.ring is not None:
            for rfd, wfd in zip(self.ring.rfds, self.ring.next_w):
                self.loop.add_reader(rfd, _spin, rfd, wfd)

    def run(self, ready: Callable[[], object]) -> None:
        self.loop.call_soon(ready)
        try:
            self.loop.run_forever()
        finally:
            if self.ring is not None:
                for rfd in self.ring.rfds:
                    self.loop.remove_reader(rfd)
            self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def poster(self) -> Callable[[int], float | None]:
        return partial(_post_csts, self.loop.call_soon_threadsafe, self.sink.hit)


class FloorLoop:
    """The floor: a deque plus an eventfd written only when no wake-up is pending."""

    def __init__(self) -> None:
        self.queue: deque = deque()
        self.pending = self.stopping = False
        self.readers: dict[int, tuple] = {}
        self.ep = select.epoll()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ep.register(self.efd, select.EPOLLIN)

    def call_soon_threadsafe(self, fn: Callable) -> None:
        self.queue.append(fn)
        if not self.pending:
            self.pending = True
            os.eventfd_write(self.efd, 1)

    def add_reader(self, fd: int, fn: Callable, *args: object) -> None:
        self.readers[fd] = (fn, args)
        self.ep.register(fd, select.EPOLLIN)

    def run_forever(self) -> None:
        queue, poll, efd, readers = self.queue, self.ep.poll, self.efd, self.readers
        while not self.stopping:
            for fd, _ in poll(0 if queue else -1):
                if fd == efd:
                    # Drain, then clear (as reactorsvc's notifier): clearing first lets a
                    # post write in between, the read swallow it and the flag stay set,
                    # and every later post is coalesced into nothing (a hang, seen on 3.13t).
                    os.eventfd_read(efd)
                    self.pending = False
                else:
                    fn, args = readers[fd]
                    fn(*args)
            for _ in range(len(queue)):
                queue.popleft()()

    def stop(self) -> None:
        self.stopping = True

    def close(self) -> None:
        self.ep.close()
        os.close(self.efd)


class FloorTarget(Target):
    def build(self) -> None:
        self.loop = FloorLoop()
        if self.ring is not None:
            for rfd, wfd in zip(self.ring.rfds, self.ring.next_w):
                self.loop.add_reader(rfd, _spin, rfd, wfd)

    def run(self, ready: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(ready)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def poster(self) -> Callable[[int], float | None]:
        return partial(_post_csts, self.loop.call_soon_threadsafe, self.sink.hit)


def targets() -> dict[str, Callable[[bool], Target]]:
    """Implementation name → factory(busy)."""
    table: dict[str, Callable[[bool], Target]] = {
        f"{REF} {op}": partial(ReactorTarget, op) for op in OPS}
    for kind in asyncio_kinds():
        table[f"{kind} call_soon_threadsafe"] = partial(AsyncioTarget, kind)
    table["deque+eventfd floor"] = partial(FloorTarget, "floor")
    return table


# -- 1. throughput ------------------------------------------------------------------------

def throughput_run(factory: Callable[[bool], Target], busy: bool, k: int) -> tuple[float, float]:
    """(posts/s at the producer, delivered/s from the first post to the last callback)."""
    with factory(busy) as target:
        post = target.poster()
        target.sink.arm(k)
        t0 = perf_counter()
        t_start = post(k) or t0  # posters that prepare objects first return their own start
        t_posted = perf_counter()
        target.sink.wait(target.op)
        return k / (t_posted - t_start), k / (target.sink.t_last - t_start)


def bench_throughput(k: int, k_add: int, repeats: int) -> None:
    rows: list[list[object]] = []
    for busy in (False, True):
        cases = {name: partial(throughput_run, factory, busy, k_add if " add " in name else k)
                 for name, factory in targets().items()}
        results = interleave_raw(cases, repeats, "throughput " + ("busy" if busy else "idle"))
        for name, runs in results.items():
            rows.append(["busy" if busy else "idle", name, statistics.median(r[0] for r in runs) / 1e6,
                         statistics.median(r[1] for r in runs) / 1e6])
    print_table(f"cross-thread throughput: {k:,} posts per run ({k_add:,} for adds), "
                f"M/s, median of {repeats} interleaved runs",
                ["loop", "implementation / post", "posted M/s", "delivered M/s"], rows)


# -- 2. latency ---------------------------------------------------------------------------

def latency_run(factory: Callable[[bool], Target], busy: bool, samples: int) -> list[float]:
    """Wake-up latencies in µs, one post at a time."""
    out = []
    with factory(busy) as target:
        post = target.poster()
        sink = target.sink
        for _ in range(samples):
            sink.arm(1)
            if not busy:
                sleep(0.0002)  # let the loop go back to sleep in the backend
            t0 = perf_counter()
            t0 = post(1) or t0
            sink.wait(target.op)
            out.append((sink.t_last - t0) * 1e6)
    return out


def bench_latency(samples: int, repeats: int) -> None:
    rows: list[list[object]] = []
    for busy in (False, True):
        cases = {name: partial(latency_run, factory, busy, samples) for name, factory in targets().items()}
        results = interleave_raw(cases, repeats, "latency " + ("busy" if busy else "idle"))
        for name, runs in results.items():
            lat = sorted(x for run in runs for x in run)
            rows.append(["busy" if busy else "idle", name, lat[len(lat) // 2],
                         lat[min(len(lat) - 1, int(len(lat) * 0.99))], len(lat)])
    print_table(f"cross-thread wake-up latency: post → callback start, µs, {repeats} interleaved "
                f"runs of {samples:,} posts", ["loop", "implementation / post", "p50 µs", "p99 µs",
                                                "samples"], rows)


# -- 3. the lock --------------------------------------------------------------------------

def bench_lock(writes: int, total: int, repeats: int) -> None:
    raise_nofile(2 * 1000 + 64)
    ring = Ring(1000)
    try:
        chain = interleave({REF: partial(chain_reactorsvc, ring, 1, writes, False),
                            f"{REF} NOLOCK": partial(chain_reactorsvc, ring, 1, writes, True)},
                           repeats, "lock: chain")
    finally:
        ring.close()
    active = interleave({REF: partial(active_reactorsvc, 100, total, False),
                         f"{REF} NOLOCK": partial(active_reactorsvc, 100, total, True)},
                        repeats, "lock: active")
    rows = stat_rows(chain, REF, "chain N=1000 A=1") + stat_rows(active, REF, "active")
    print_table(f"the lock: default base vs NOLOCK, µs per callback, median of {repeats}",
                ["bench", "implementation", *STAT_HEADERS], rows)
    for label, stats in (("chain N=1000 A=1", chain), ("active dispatch", active)):
        locked, nolock = stats[REF], stats[f"{REF} NOLOCK"]
        print(f"lock cost, {label}: {locked.cpu_us - nolock.cpu_us:+.3f} µs CPU, "
              f"{locked.user_us - nolock.user_us:+.3f} µs user per callback")


def main(argv: list[str] | None = None) -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["throughput", "latency", "lock"], action="append",
                        help="run only these benchmarks (repeatable)")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = positive("--repeats", args.repeats) if args.repeats is not None else (1 if quick else 3)
    only = args.only or ["throughput", "latency", "lock"]
    banner("crossthread.py" + (" --quick" if quick else ""))
    if "throughput" in only:
        bench_throughput(5_000 if quick else 200_000, 1_000 if quick else 50_000, repeats)
    if "latency" in only:
        bench_latency(50 if quick else 2_000, repeats)
    if "lock" in only:
        bench_lock(2_000 if quick else 100_000, 20_000 if quick else 1_000_000,
                   repeats if args.repeats is not None else (1 if quick else 5))


if __name__ == "__main__":
    sys.exit(main())
