"""Helpers shared by the benchmark scripts: timing, interleaved repeats, tables, loops.

Every benchmark case is a zero-argument callable that sets itself up, times only the part
that matters with a `Stopwatch`, tears itself down, and returns a `Sample`. `interleave()`
runs the cases round-robin (rotating who goes first) so that a noisy minute on a shared
machine hurts every implementation alike; the tables quote medians of the per-unit costs.

User CPU comes from resource.getrusage(): the kernel's share of a syscall-heavy benchmark
is the same for every implementation, so user time is the framework's own cost. Linux
splits a task's (exact) CPU time into user and system by sampling at the tick (250 Hz
here), so the user figure of one short run is noisy: it is pooled over all runs (total
user / total units), while wall and CPU (user + system, exact) are medians of the runs.
Not thread-safe; the scripts call these from their main thread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import platform
import resource
import socket
import statistics
import sys
from dataclasses import dataclass
from time import perf_counter
from typing import Callable, TypeVar

# Run straight from a checkout (`python benchmarks/chain.py`) as well as from the venv; an
# importable reactorsvc (installed, or another checkout on PYTHONPATH for an A/B) wins.
if importlib.util.find_spec("reactorsvc") is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    import uvloop
except ImportError:  # optional: the `bench` extra; its columns are skipped when absent
    uvloop = None

T = TypeVar("T")


@dataclass
class Sample:
    """One timed run: wall, user-CPU and system-CPU seconds spent on `n` units."""

    wall: float
    user: float
    sys: float
    n: int


@dataclass
class Stat:
    """Per-unit costs in µs: wall and CPU medians over the runs; user and system pooled."""

    wall_us: float
    cpu_us: float
    user_us: float
    sys_us: float
    runs: int


def cpu_times() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


class Stopwatch:
    """Times a block: `.wall`, `.user` and `.sys` seconds. Collects garbage first and keeps
    the collector off inside, so a collection triggered by one implementation's garbage is
    not billed to whichever runs next."""

    wall = user = sys = 0.0

    def __enter__(self) -> Stopwatch:
        gc.collect()
        self._gc = gc.isenabled()
        gc.disable()
        self._u0, self._s0 = cpu_times()
        self._w0 = perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = perf_counter() - self._w0
        u1, s1 = cpu_times()
        self.user, self.sys = u1 - self._u0, s1 - self._s0
        if self._gc:
            gc.enable()

    def sample(self, n: int) -> Sample:
        return Sample(self.wall, self.user, self.sys, n)


def interleave(cases: dict[str, Callable[[], Sample]], repeats: int,
               progress: str = "") -> dict[str, Stat]:
    """Run every case `repeats` times, round-robin, rotating the order each round."""
    return {name: summarize(s) for name, s in interleave_raw(cases, repeats, progress).items()}


def interleave_raw(cases: dict[str, Callable[[], T]], repeats: int, progress: str = "",
                   order: Callable[[int], list[str]] | None = None) -> dict[str, list[T]]:
    """interleave() without the summary: each case's results, in run order. `order(r)`: the
    names in round r's running order (default: the cases rotated by one each round)."""
    names = list(cases)
    results: dict[str, list[T]] = {name: [] for name in names}
    progress = progress if sys.stderr.isatty() else ""
    for r in range(repeats):
        k = r % len(names)
        for name in (order(r) if order is not None else names[k:] + names[:k]):
            if progress:
                print(f"\r  {progress}: round {r + 1}/{repeats} {name:<32}", end="", file=sys.stderr,
                      flush=True)
            results[name].append(cases[name]())
    if progress:
        print("\r" + " " * 79 + "\r", end="", file=sys.stderr, flush=True)
    return results


def summarize(samples: list[Sample]) -> Stat:
    units = sum(s.n for s in samples)
    return Stat(statistics.median(s.wall / s.n for s in samples) * 1e6,
                statistics.median((s.user + s.sys) / s.n for s in samples) * 1e6,
                sum(s.user for s in samples) / units * 1e6,
                sum(s.sys for s in samples) / units * 1e6, len(samples))


def ratio(value: float, ref: float) -> str:
    return f"{value / ref:.2f}x" if ref > 0 else "-"


def print_table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print(f"\n{title}")

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def stat_rows(stats: dict[str, Stat], ref: str, label: str = "") -> list[list[object]]:
    """Rows `[label, impl, wall, cpu, over floor, user, sys, user ratio, cpu ratio]` against
    `ref`; "over floor" is CPU minus the bare-Python floor's (any impl named "... floor"):
    both exact and with the same syscalls, it is the framework's own cost, free of the
    user/system sampling noise."""
    base = stats[ref]
    floors = [s for name, s in stats.items() if name.endswith("floor")]
    rows: list[list[object]] = []
    for name, s in stats.items():
        over = f"{s.cpu_us - floors[0].cpu_us:+.3f}" if floors else "-"
        rows.append([label, name, s.wall_us, s.cpu_us, over, s.user_us, s.sys_us,
                     ratio(s.user_us, base.user_us), ratio(s.cpu_us, base.cpu_us)])
    return rows


STAT_HEADERS = ["wall µs", "cpu µs", "cpu-floor", "user µs", "sys µs", "user/ref", "cpu/ref"]


def new_asyncio_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A fresh loop: kind "asyncio" (the default selector loop) or "uvloop"."""
    if kind == "uvloop":
        if uvloop is None:
            raise RuntimeError("uvloop is not installed (pip install '.[bench]')")
        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def asyncio_kinds() -> list[str]:
    return ["asyncio", "uvloop"] if uvloop is not None else ["asyncio"]


class Ring:
    """N non-blocking socketpairs as raw fds; `next_w[i]` is the write end of pair i+1."""

    def __init__(self, n: int) -> None:
        self.rfds: list[int] = []
        self.wfds: list[int] = []
        try:
            for _ in range(n):
                a, b = socket.socketpair()
                a.setblocking(False)
                b.setblocking(False)
                self.rfds.append(a.detach())
                self.wfds.append(b.detach())
        except BaseException:
            self.close()
            raise
        self.next_w = self.wfds[1:] + self.wfds[:1]

    def kick(self, active: int) -> None:
        """Write one byte into `active` evenly spaced pairs (bench.c's `space`)."""
        space = len(self.wfds) // active
        for i in range(active):
            os.write(self.wfds[i * space], b"e")

    def close(self) -> None:
        for fd in self.rfds + self.wfds:
            os.close(fd)
        self.rfds, self.wfds = [], []


def raise_nofile(needed: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit toward the hard one; exit with a clear message if
    even the hard limit is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"need {needed} file descriptors but RLIMIT_NOFILE's hard limit is {hard}: "
                 f"raise it (ulimit -Hn) or run with fewer pairs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def arg_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny configuration that runs in a few seconds (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved runs per implementation (the median is quoted)")
    return parser


def positive(name: str, value: int) -> int:
    if value < 1:
        sys.exit(f"{name} must be >= 1, got {value}")
    return value


def banner(script: str) -> None:
    import reactorsvc
    from reactorsvc import EventBase

    with EventBase() as base:
        method = base.method
    uv = f"uvloop {uvloop.__version__}" if uvloop is not None else "uvloop: not installed (skipped)"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{script}: Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load}; reactorsvc backend {method}, "
          f"{'compiled' if reactorsvc.COMPILED else 'pure'} build; {uv}")
