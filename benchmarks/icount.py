#!/usr/bin/env python3
"""Instructions per callback, counted by valgrind's callgrind: a repeatable A/B of the hot path.

Wall and CPU time on a shared 2-CPU machine move by 10-25 % between runs, more than most
hot-path changes are worth. Instruction counts do not move: this script runs each case under
`valgrind --tool=callgrind` at two sizes and prints (instructions(big) - instructions(small))
/ (big - small), so start-up and warm-up cancel out.

    .venv/bin/python benchmarks/icount.py                      # every case, this checkout
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/icount.py chain active

Caveat: CPython turns pymalloc off under valgrind, so every allocation is counted at glibc
malloc's price (several times pymalloc's); compare implementations of the same work only.
Cases: chain (100 socketpairs, one byte circulating, locked base), chain-nolock, asyncio and
uvloop (the same with add_reader; uvloop when installed), floor (a bare select.epoll loop), active / active-nolock (100 self-re-activating events),
timers / timers-nolock (one-shot timers with random delays in [0, 50 ms)).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import select
import socket
import subprocess
import sys

SIZES = {"chain": (2_000, 12_000), "floor": (2_000, 12_000), "asyncio": (2_000, 12_000),
         "uvloop": (2_000, 12_000), "active": (20_000, 120_000), "timers": (5_000, 25_000)}
CASES = ["chain", "chain-nolock", "asyncio", "uvloop", "floor", "active", "active-nolock",
         "timers", "timers-nolock"]


class _Done(Exception):
    pass


def _raise_done() -> None:
    raise _Done


def _ring(n: int) -> tuple[list[socket.socket], list[int], list[int]]:
    socks, rfds, wfds = [], [], []
    for _ in range(n):
        a, b = socket.socketpair()
        socks += [a, b]
        rfds.append(a.fileno())
        wfds.append(b.fileno())
    return socks, rfds, wfds[1:] + wfds[:1]


def _chain_cb(n: int, stop):
    left = n

    def cb(fd: int, what: int, wfd: int) -> None:
        nonlocal left
        os.read(fd, 1)
        if left:
            left -= 1
            os.write(wfd, b"e")
        else:
            stop()
    return cb


def run_floor(n: int) -> None:
    socks, rfds, next_w = _ring(100)
    ep = select.epoll()
    cb = _chain_cb(n, _raise_done)
    callbacks = {}
    for rfd, wfd in zip(rfds, next_w):
        ep.register(rfd, select.EPOLLIN)
        callbacks[rfd] = (cb, wfd)
    os.write(next_w[-1], b"e")
    poll = ep.poll
    try:
        while True:
            for fd, mask in poll():
                fn, arg = callbacks[fd]
                fn(fd, mask, arg)
    except _Done:
        pass
    ep.close()
    for s in socks:
        s.close()


def run_asyncio(kind: str, n: int) -> None:
    import asyncio
    if kind == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop()
    socks, rfds, next_w = _ring(100)
    cb = _chain_cb(n, loop.stop)
    for rfd, wfd in zip(rfds, next_w):
        loop.add_reader(rfd, cb, rfd, 0, wfd)
    os.write(next_w[-1], b"e")
    loop.run_forever()
    for rfd in rfds:
        loop.remove_reader(rfd)
    loop.close()
    for s in socks:
        s.close()


def run_reactor(case: str, n: int) -> None:
    from reactorsvc import (EV_PERSIST, EV_READ, EV_TIMEOUT, EVENT_BASE_FLAG_NOLOCK, Event,
                            EventBase, EventConfig)
    config = EventConfig()
    if case.endswith("-nolock"):
        config.set_flag(EVENT_BASE_FLAG_NOLOCK)
    with EventBase(config) as base:
        if case.startswith("chain"):
            socks, rfds, next_w = _ring(100)
            cb = _chain_cb(n, base.loopbreak)
            for rfd, wfd in zip(rfds, next_w):
                Event(base, rfd, EV_READ | EV_PERSIST, cb, wfd).add()
            os.write(next_w[-1], b"e")
            base.loop()
            for s in socks:
                s.close()
        elif case.startswith("active"):
            left = n

            def again(fd: int, what: int, box: list) -> None:
                nonlocal left
                if left:
                    left -= 1
                    box[0].activate(EV_TIMEOUT)
            for _ in range(100):
                box: list = []
                box.append(Event(base, -1, 0, again, box))
                box[0].activate(EV_TIMEOUT)
            base.loop()
        else:
            rng = random.Random(1)

            def noop(fd: int, what: int, arg: object) -> None:
                pass
            for _ in range(n):
                Event.timer(base, noop).add(rng.random() * 0.05)
            base.loop()


def run_case(case: str, n: int) -> None:
    """Warm up (10 small runs: the adaptive interpreter specialises), then the measured run."""
    if case == "floor":
        fn = run_floor
    elif case in ("asyncio", "uvloop"):
        fn = lambda k: run_asyncio(case, k)  # noqa: E731
    else:
        fn = lambda k: run_reactor(case, k)  # noqa: E731
    for _ in range(10):
        fn(50)
    fn(n)


def count(case: str, n: int) -> int:
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--run", case, str(n)],
                         capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--run"]:
        run_case(argv[1], int(argv[2]))
        return
    cases = argv or CASES
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; choose from {CASES}")
    print(f"instructions per callback (timers: per timer), callgrind, Python {sys.version.split()[0]}")
    for case in cases:
        if case == "uvloop" and importlib.util.find_spec("uvloop") is None:
            print(f"{case:<14} {'(not installed)':>9}")
            continue
        small, big = SIZES[case.split("-")[0]]
        per = (count(case, big) - count(case, small)) / (big - small)
        print(f"{case:<14} {per:>9,.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
