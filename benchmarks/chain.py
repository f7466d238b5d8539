#!/usr/bin/env python3
"""libevent's bench.c in Python: µs per callback of reactorsvc against asyncio, uvloop and a
bare select.epoll loop (the floor for Python), plus active-event dispatch and timers.

1. chain: N socketpairs, each with a persistent read event; A bytes circulate; each callback
   reads one byte and writes one to the next pair until W writes are done.
2. active: 100 events that re-activate themselves from their callback (no I/O), against
   asyncio call_soon and a bare deque.
3. timers: 200,000 one-shot timers with random delays in [0, 1 s); CPU µs per timer
   (creation, scheduling and firing) against asyncio call_later and a bare heapq loop.

Run: python benchmarks/chain.py [--quick] [--only chain|active|timers] [--impl NAME ...]
(see --help). Only the measured part runs inside the Stopwatch; set-up is outside.
"""

from __future__ import annotations

import heapq
import os
import random
import select
import sys
from collections import deque
from functools import partial
from time import monotonic
from typing import Callable

from _common import (STAT_HEADERS, Ring, Sample, Stopwatch, arg_parser, asyncio_kinds, banner,
                     interleave, new_asyncio_loop, positive, print_table, raise_nofile, stat_rows)

from reactorsvc import (EV_PERSIST, EV_READ, EV_TIMEOUT, EVENT_BASE_FLAG_NOLOCK, EVLOOP_NONBLOCK,
                        Event, EventBase, EventConfig)

REF = "reactorsvc"


class _Done(Exception):
    """Ends a bare loop from inside a callback."""


def _raise_done() -> None:
    raise _Done


def new_base(nolock: bool) -> EventBase:
    config = EventConfig()
    if nolock:
        config.set_flag(EVENT_BASE_FLAG_NOLOCK)
    return EventBase(config)


def impl_names() -> list[str]:
    return [REF, f"{REF} NOLOCK", *asyncio_kinds()]


# -- 1. the chain ---------------------------------------------------------------------------

def chain_callback(total: int, writes: int, stop: Callable[[], object]) -> Callable:
    """bench.c's read_cb: read a byte, pass one on while writes last, stop after `total` reads."""
    reads = 0
    left = writes
    read, write = os.read, os.write

    def cb(fd: int, what: int, wfd: int) -> None:
        nonlocal reads, left
        read(fd, 1)
        reads += 1
        if left:
            write(wfd, b"e")
            left -= 1
        elif reads == total:
            stop()

    return cb


def chain_reactorsvc(ring: Ring, active: int, writes: int, nolock: bool) -> Sample:
    total = active + writes
    with new_base(nolock) as base:
        cb = chain_callback(total, writes, base.loopbreak)
        for rfd, wfd in zip(ring.rfds, ring.next_w):
            Event(base, rfd, EV_READ | EV_PERSIST, cb, wfd).add()
        base.loop(EVLOOP_NONBLOCK)  # bench.c's warm-up pass
        with Stopwatch() as sw:
            ring.kick(active)
            base.loop()
    return sw.sample(total)


def chain_asyncio(ring: Ring, active: int, writes: int, kind: str) -> Sample:
    total = active + writes
    loop = new_asyncio_loop(kind)
    try:
        cb = chain_callback(total, writes, loop.stop)
        for rfd, wfd in zip(ring.rfds, ring.next_w):
            loop.add_reader(rfd, cb, rfd, 0, wfd)
        loop.call_soon(loop.stop)
        loop.run_forever()  # warm-up pass
        with Stopwatch() as sw:
            ring.kick(active)
            loop.run_forever()
        for rfd in ring.rfds:
            loop.remove_reader(rfd)
    finally:
        loop.close()
    return sw.sample(total)


def chain_floor(ring: Ring, active: int, writes: int) -> Sample:
    """The floor: epoll.poll() and a dict fd → (callback, arg); nothing else."""
    total = active + writes
    ep = select.epoll()
    try:
        cb = chain_callback(total, writes, _raise_done)
        callbacks = {}
        for rfd, wfd in zip(ring.rfds, ring.next_w):
            ep.register(rfd, select.EPOLLIN)
            callbacks[rfd] = (cb, wfd)
        poll = ep.poll
        with Stopwatch() as sw:
            ring.kick(active)
            try:
                while True:
                    for fd, mask in poll():
                        fn, arg = callbacks[fd]
                        fn(fd, mask, arg)
            except _Done:
                pass
    finally:
        ep.close()
    return sw.sample(total)


def chain_cases(ring: Ring, active: int, writes: int, impls: list[str]) -> dict[str, Callable[[], Sample]]:
    table = {
        REF: partial(chain_reactorsvc, ring, active, writes, False),
        f"{REF} NOLOCK": partial(chain_reactorsvc, ring, active, writes, True),
        **{kind: partial(chain_asyncio, ring, active, writes, kind) for kind in asyncio_kinds()},
        "epoll floor": partial(chain_floor, ring, active, writes),
    }
    return {name: table[name] for name in impls}


def bench_chain(pairs: list[int], actives: list[int], writes: int, repeats: int, impls: list[str]) -> None:
    raise_nofile(2 * max(pairs) + 64)
    rows: list[list[object]] = []
    for n in pairs:
        ring = Ring(n)
        try:
            for a in actives:
                stats = interleave(chain_cases(ring, a, writes, impls), repeats, f"chain N={n} A={a}")
                rows += stat_rows(stats, impls[0], f"N={n} A={a}")
        finally:
            ring.close()
    print_table(f"chain: µs per callback, W={writes:,} writes, median of {repeats} interleaved runs; "
                f"ratios vs {impls[0]}", ["config", "implementation", *STAT_HEADERS], rows)


# -- 2. active-event dispatch, no I/O ---------------------------------------------------------
# Each implementation gets the same callback body in its own calling convention: while
# re-activations are left, re-activate yourself; then stop once all events in flight finished.

def active_reactorsvc(nevents: int, total: int, nolock: bool) -> Sample:
    with new_base(nolock) as base:
        left, finished, stop = total - nevents, 0, base.loopbreak

        def cb(fd: int, what: int, box: list) -> None:
            nonlocal left, finished
            if left:
                left -= 1
                box[0].activate(EV_TIMEOUT)
            else:
                finished += 1
                if finished == nevents:
                    stop()

        events = []
        for _ in range(nevents):
            box: list = []
            box.append(Event(base, -1, 0, cb, box))  # the callback's arg holds its own event
            events.append(box[0])
        with Stopwatch() as sw:
            for ev in events:
                ev.activate(EV_TIMEOUT)
            base.loop()
    return sw.sample(total)


def active_asyncio(nevents: int, total: int, kind: str) -> Sample:
    loop = new_asyncio_loop(kind)
    try:
        left, finished, stop, call_soon = total - nevents, 0, loop.stop, loop.call_soon

        def cb() -> None:
            nonlocal left, finished
            if left:
                left -= 1
                call_soon(cb)
            else:
                finished += 1
                if finished == nevents:
                    stop()

        with Stopwatch() as sw:
            for _ in range(nevents):
                call_soon(cb)
            loop.run_forever()
    finally:
        loop.close()
    return sw.sample(total)


def active_floor(nevents: int, total: int) -> Sample:
    """The floor: a deque of callables, popped and called."""
    queue: deque = deque()
    left, append = total - nevents, queue.append

    def cb() -> None:
        nonlocal left
        if left:
            left -= 1
            append(cb)

    with Stopwatch() as sw:
        for _ in range(nevents):
            append(cb)
        popleft = queue.popleft
        while queue:
            popleft()()
    return sw.sample(total)


def active_cases(nevents: int, total: int, impls: list[str]) -> dict[str, Callable[[], Sample]]:
    table = {
        REF: partial(active_reactorsvc, nevents, total, False),
        f"{REF} NOLOCK": partial(active_reactorsvc, nevents, total, True),
        **{kind: partial(active_asyncio, nevents, total, kind) for kind in asyncio_kinds()},
        "deque floor": partial(active_floor, nevents, total),
    }
    return {name: table[name] for name in _swap_floor(impls, "deque floor")}


def bench_active(total: int, repeats: int, impls: list[str]) -> None:
    # Warm-up, untimed: each timed run enters its dispatch loop once (every callback runs in
    # one pass), so let the adaptive interpreter specialise every implementation's code first.
    for case in active_cases(100, 1_000, impls).values():
        for _ in range(10):
            case()
    stats = interleave(active_cases(100, total, impls), repeats, "active")
    print_table(f"active dispatch, no I/O: 100 self-re-activating events, {total:,} callbacks; "
                f"µs per callback, median of {repeats}; ratios vs {impls[0]}",
                ["bench", "implementation", *STAT_HEADERS], stat_rows(stats, impls[0], "active"))


# -- 3. timers ----------------------------------------------------------------------------------

def timers_reactorsvc(delays: list[float], nolock: bool) -> Sample:
    n = len(delays)
    with new_base(nolock) as base:
        fired, stop, timer = 0, base.loopbreak, Event.timer

        def cb(fd: int, what: int, arg: object) -> None:
            nonlocal fired
            fired += 1
            if fired == n:
                stop()

        with Stopwatch() as sw:
            for delay in delays:
                timer(base, cb).add(delay)
            base.loop()
    return sw.sample(n)


def timers_asyncio(delays: list[float], kind: str) -> Sample:
    n = len(delays)
    loop = new_asyncio_loop(kind)
    try:
        fired, stop, call_later = 0, loop.stop, loop.call_later

        def cb() -> None:
            nonlocal fired
            fired += 1
            if fired == n:
                stop()

        with Stopwatch() as sw:
            for delay in delays:
                call_later(delay, cb)
            loop.run_forever()
    finally:
        loop.close()
    return sw.sample(n)


def timers_floor(delays: list[float]) -> Sample:
    """The floor: heapq of (deadline, seq, callback), sleeping in epoll.poll until the top."""
    n = len(delays)
    heap: list = []
    fired = 0

    def cb() -> None:
        nonlocal fired
        fired += 1

    ep = select.epoll()
    try:
        with Stopwatch() as sw:
            for seq, delay in enumerate(delays):
                heapq.heappush(heap, (monotonic() + delay, seq, cb))
            pop, poll = heapq.heappop, ep.poll
            while heap:
                wait = heap[0][0] - monotonic()
                if wait > 0:
                    poll(wait)
                now = monotonic()
                while heap and heap[0][0] <= now:
                    pop(heap)[2]()
    finally:
        ep.close()
    assert fired == n
    return sw.sample(n)


def timers_cases(delays: list[float], impls: list[str]) -> dict[str, Callable[[], Sample]]:
    table = {
        REF: partial(timers_reactorsvc, delays, False),
        f"{REF} NOLOCK": partial(timers_reactorsvc, delays, True),
        **{kind: partial(timers_asyncio, delays, kind) for kind in asyncio_kinds()},
        "heapq floor": partial(timers_floor, delays),
    }
    return {name: table[name] for name in _swap_floor(impls, "heapq floor")}


def bench_timers(count: int, span: float, repeats: int, impls: list[str]) -> None:
    rng = random.Random(20240601)
    delays = [rng.random() * span for _ in range(count)]
    stats = interleave(timers_cases(delays, impls), repeats, "timers")
    print_table(f"timers: {count:,} one-shot timers, random delays in [0, {span:g} s); µs per timer "
                f"(create + schedule + fire), median of {repeats}; ratios vs {impls[0]}",
                ["bench", "implementation", *STAT_HEADERS], stat_rows(stats, impls[0], "timers"))


# -- command line -------------------------------------------------------------------------------

def _swap_floor(impls: list[str], floor: str) -> list[str]:
    """The user names the floor "floor"; each benchmark has its own kind of floor."""
    return [floor if name == "floor" else name for name in impls]


def main(argv: list[str] | None = None) -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["chain", "active", "timers"], action="append",
                        help="run only these benchmarks (repeatable)")
    parser.add_argument("--impl", action="append", metavar="NAME",
                        help=f"implementations to run (repeatable), the first is the ratios' "
                             f"reference; default: {', '.join(impl_names())}, floor")
    parser.add_argument("--pairs", type=int, action="append", metavar="N", help="chain: socketpairs")
    parser.add_argument("--active", type=int, action="append", metavar="A", help="chain: active bytes")
    parser.add_argument("--writes", type=int, metavar="W", help="chain: writes per run")
    args = parser.parse_args(argv)
    quick = args.quick
    known = impl_names() + ["floor"]
    impls = args.impl or known
    for name in impls:
        if name not in known:
            parser.error(f"--impl: unknown implementation {name!r}; known: {', '.join(known)}")
    repeats = positive("--repeats", args.repeats) if args.repeats is not None else (1 if quick else 5)
    only = args.only or ["chain", "active", "timers"]
    banner("chain.py" + (" --quick" if quick else ""))
    if "chain" in only:
        pairs = [positive("--pairs", n) for n in args.pairs or ([100, 1000] if quick else [100, 1000, 9900])]
        actives = [positive("--active", a) for a in args.active or [1, 100]]
        if any(a > n for a in actives for n in pairs):
            parser.error("--active: cannot exceed --pairs")
        writes = positive("--writes", args.writes) if args.writes is not None else (2_000 if quick else 50_000)
        bench_chain(pairs, actives, writes, repeats, _swap_floor(impls, "epoll floor"))
    if "active" in only:
        bench_active(20_000 if quick else 1_000_000, repeats, impls)
    if "timers" in only:
        bench_timers(2_000 if quick else 200_000, 0.05 if quick else 1.0,
                     repeats if args.repeats is not None else (1 if quick else 3), impls)


if __name__ == "__main__":
    sys.exit(main())
