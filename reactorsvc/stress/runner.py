"""run_stress(): start the bases, let the hammers loose, then drain, stop, free and check.

Phases (main thread): setup -> hammer for `seconds` (a progress line per second, watchdog)
-> stop the hammers -> drain what is still owed -> delete every event and stop the loops ->
free the bases and compare /proc/self/fd with before. A stalled thread ends the run at once
with every thread's stack dumped; its threads are daemons and are left where they hang.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from typing import TextIO

from reactorsvc import supported_methods
from reactorsvc._checks import check_int, check_seconds

from .bases import StressBase
from .hammer import MAX_TIMEOUT, Hammer
from .model import ARMED, Violations
from .report import StressReport
from .watchdog import Watchdog, dump_all_threads

_FD_DIR = "/proc/self/fd"
_TICK = 0.05


def run_stress(threads: int = 4, bases: int = 2, seconds: float = 5.0, seed: int = 0,
               backend: str | None = None, out: TextIO | None = None, *,
               stall_timeout: float = 5.0) -> StressReport:
    """Hammer `bases` looping EventBases from `threads` threads for `seconds`; check the
    reactor's promises as it goes and at the end. Prints progress and the report to `out`
    (None: the current sys.stdout). `backend` None lets EventConfig choose (environment
    honoured); a name forces that backend.

    Blocks for about `seconds` (plus draining). Not reentrant with respect to `out`.
    Bad arguments raise ValueError/TypeError naming the argument.
    """
    _check_args(threads, bases, seconds, seed, backend, stall_timeout)
    return _Run(threads, bases, seconds, seed, backend, out if out is not None else sys.stdout,
                stall_timeout).execute()


def _check_args(threads: object, bases: object, seconds: object, seed: object,
                backend: object, stall_timeout: object) -> None:
    check_int(threads, "threads", 1)
    check_int(bases, "bases", 1)
    check_int(seed, "seed")
    check_seconds(seconds, "seconds", positive=True)
    check_seconds(stall_timeout, "stall_timeout", positive=True)
    if backend is not None and backend not in supported_methods():
        raise ValueError(f"backend {backend!r} is not available here (supported: "
                         f"{', '.join(supported_methods())})")


def _open_fds() -> set[int] | None:
    try:
        return {int(name) for name in os.listdir(_FD_DIR)}
    except FileNotFoundError:
        return None  # no /proc: the fd check is skipped


class _Run:
    def __init__(self, threads: int, nbases: int, seconds: float, seed: int,
                 backend: str | None, out: TextIO, stall: float) -> None:
        self.nthreads, self.nbases, self.seconds, self.seed = threads, nbases, seconds, seed
        self.backend, self.out, self.stall = backend, out, stall
        self.violations = Violations()
        self.stop = threading.Event()
        self.bases: list[StressBase] = []
        self.hammers: list[Hammer] = []
        self.elapsed = 0.0

    def execute(self) -> StressReport:
        fds_before = _open_fds()
        try:
            self._setup()
        except BaseException:
            self._abandon()
            raise
        ok = self._hammer_phase() and self._stop_hammers()
        if ok:
            self._drain()
            ok = self._stop_bases()
        report = self._report()
        if ok:
            for sb in self.bases:
                sb.free()
            self._check_fds(fds_before)
            report.violation_counts = dict(self.violations.counts)
            report.violations = list(self.violations.details)
        self._print(report.format())
        return report

    def _setup(self) -> None:
        for i in range(self.nbases):
            self.bases.append(StressBase(i, self.backend, self.nthreads, self.violations))
        for sb in self.bases:
            sb.start()
        self.hammers = [Hammer(i, self.seed, self.bases, self.stop, self.violations)
                        for i in range(self.nthreads)]
        for h in self.hammers:
            h.thread.start()

    def _abandon(self) -> None:
        """Setup failed half-way: stop and free whatever exists."""
        self.stop.set()
        for h in self.hammers:
            h.thread.join(self.stall)
        for sb in self.bases:
            if sb.thread.is_alive():
                sb.stop_loop(self.stall)
            if not sb.thread.is_alive():
                sb.free()

    def _hammer_phase(self) -> bool:
        watchdog = Watchdog(self.stall)
        start = time.monotonic()
        end = start + self.seconds
        next_tick, last_ops = start + 1.0, 0
        while True:
            now = time.monotonic()
            time.sleep(max(0.0, min(_TICK, end - now)))  # pacing of the progress printer only
            now = time.monotonic()
            if now >= next_tick:
                ops = self._ops()
                self._progress(round(now - start), ops, ops - last_ops)
                next_tick, last_ops = next_tick + 1.0, ops
            stalled = watchdog.check({h.thread.name: h.ops for h in self.hammers}, now)
            if stalled:
                self.elapsed = now - start
                return self._deadlock(f"no progress for {self.stall:g}s in {', '.join(stalled)}")
            if now >= end:
                self.elapsed = now - start
                return True

    def _stop_hammers(self) -> bool:
        self.stop.set()
        deadline = time.monotonic() + self.stall
        for h in self.hammers:
            h.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [h.thread.name for h in self.hammers if h.thread.is_alive()]
        return not stuck or self._deadlock(f"{', '.join(stuck)} did not stop within {self.stall:g}s")

    def _drain(self) -> None:
        """Wait (bounded) for every owed run and posted call, then report what is missing."""
        deadline = time.monotonic() + max(2.0, self.stall)
        while any(sb.owed() for sb in self.bases) and time.monotonic() < deadline:
            time.sleep(0.005)
        for sb in self.bases:
            for rec in sb.records:
                if not rec.persist and rec.state == ARMED:
                    self.violations.add("lost-run", f"{rec.name}: added/activated but never ran "
                                        f"(pending={rec.ev.pending():#x})")
            for producer, (sent, got) in enumerate(zip(sb.posted, sb.delivered)):
                if sent != got:
                    self.violations.add("lost-post", f"base {sb.index}: producer {producer} "
                                        f"posted {sent} calls, {got} ran")

    def _stop_bases(self) -> bool:
        for sb in self.bases:
            sb.delete_all()
        # Let stale timer deadlines pass so each loop sleeps with nothing to wait for.
        time.sleep(2 * MAX_TIMEOUT + 0.01)
        awake = [sb.probe_wakeup(max(2.0, self.stall / 2)) for sb in self.bases]
        # A loop that missed the probe cannot be woken by loopbreak() either: short join.
        stuck = [sb.thread.name for sb, ok in zip(self.bases, awake)
                 if not sb.stop_loop(self.stall if ok else 0.5)]
        return not stuck or self._deadlock(f"{', '.join(stuck)} did not stop after loopbreak()")

    def _deadlock(self, why: str) -> bool:
        self.violations.add("deadlock", why)
        self._print(f"DEADLOCK: {why}; stacks of every thread follow")
        dump_all_threads(self.out)
        self.stop.set()
        return False

    def _check_fds(self, before: set[int] | None) -> None:
        after = _open_fds()
        if before is None or after is None:
            return
        for fd in sorted(after - before):
            try:
                target = os.readlink(f"{_FD_DIR}/{fd}")
            except OSError:
                continue  # the listdir fd itself, closed by now
            self.violations.add("fd-leak", f"fd {fd} ({target}) still open after the bases were freed")

    # -- numbers ----------------------------------------------------------------------------

    def _ops(self) -> int:
        return sum(h.ops for h in self.hammers)

    def _counters(self) -> Counter:
        total: Counter = Counter()
        for sb in self.bases:
            total.update(sb.base.counters())
        return total

    def _progress(self, second: int, ops: int, rate: int) -> None:
        c = self._counters()
        self._print(f"[{second:3d}s] ops={ops} ({rate}/s) callbacks={c['callbacks']} "
                    f"wakeups_sent={c['wakeups_sent']} coalesced={c['wakeups_coalesced']} "
                    f"violations={self.violations.total}")

    def _report(self) -> StressReport:
        c = self._counters()
        owed: Counter = Counter()
        ops: Counter = Counter()
        for sb in self.bases:
            for rec in sb.records:
                owed.update(rec.tally)
        for h in self.hammers:
            ops.update(h.counts)
        return StressReport(
            backend=self.bases[0].base.method, threads=self.nthreads, bases=self.nbases,
            seconds=self.seconds, seed=self.seed, elapsed=self.elapsed, operations=self._ops(),
            op_counts=dict(ops), callbacks=c["callbacks"], iterations=c["iterations"],
            wakeups=c["wakeups"], wakeups_sent=c["wakeups_sent"],
            wakeups_coalesced=c["wakeups_coalesced"], owed=dict(owed),
            posts=sum(sum(sb.posted) for sb in self.bases),
            delivered=sum(sum(sb.delivered) for sb in self.bases),
            loop_restarts=sum(sb.restarts for sb in self.bases),
            violation_counts=dict(self.violations.counts), violations=list(self.violations.details))

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
