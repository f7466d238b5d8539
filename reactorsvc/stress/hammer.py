"""Hammer threads: random operations on random events of random bases.

Hammer i draws every choice from its own random.Random(seed + i), always the same number of
draws per operation, so one seed gives one sequence of choices whatever the timing (what the
reactor does with them still depends on the interleaving).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from .bases import ACTIVATE_RES, EVENTS_PER_BASE, MIN_INTERVAL, NPRIORITIES, StressBase
from .model import Violations

OPS = ("add", "activate", "delete", "delete_blocking", "priority", "post", "loopbreak")
WEIGHTS = (30, 15, 12, 8, 5, 28, 2)
MAX_TIMEOUT = 0.02  # short, so what is owed at the end fires quickly


class Choice(NamedTuple):
    op: str
    base: int
    event: int
    use_timeout: bool
    timeout: float
    priority: int


def draw(rng: random.Random, nbases: int) -> Choice:
    """One operation and all its parameters (drawn whether the operation uses them or not)."""
    return Choice(rng.choices(OPS, WEIGHTS)[0], rng.randrange(nbases), rng.randrange(EVENTS_PER_BASE),
                  rng.random() < 0.5, rng.uniform(0.0, MAX_TIMEOUT), rng.randrange(NPRIORITIES))


def choices(seed: int, index: int, nbases: int, n: int) -> list[Choice]:
    """The first n choices hammer `index` makes in a run with `seed` and `nbases` bases."""
    rng = random.Random(seed + index)
    return [draw(rng, nbases) for _ in range(n)]


class Hammer:
    """Runs in its own thread until `stop` is set; counts its operations (read by others)."""

    def __init__(self, index: int, seed: int, bases: Sequence[StressBase], stop: threading.Event,
                 violations: Violations) -> None:
        self.index = index
        self.seed = seed
        self.bases = bases
        self.stop = stop
        self.violations = violations
        self.ops = 0
        self.counts: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.run, name=f"stress-hammer-{index}", daemon=True)

    def run(self) -> None:
        rng = random.Random(self.seed + self.index)
        nbases = len(self.bases)
        counts = self.counts
        while not self.stop.is_set():
            choice = draw(rng, nbases)
            try:
                self._do(choice)
            except Exception as exc:  # noqa: BLE001 -- every exception is a finding
                self.violations.add("hammer-raised", f"hammer {self.index}: {choice.op} on base "
                                    f"{choice.base} event {choice.event}: {exc!r}")
            counts[choice.op] += 1
            self.ops += 1

    def _do(self, c: Choice) -> None:
        sb = self.bases[c.base]
        op = c.op
        if op == "post":
            sb.posted[self.index] += 1
            sb.base.call_soon_threadsafe(sb.post_received, self.index, sb.posted[self.index])
            return
        if op == "loopbreak":
            sb.base.loopbreak()  # the base thread restarts its loop
            return
        rec = sb.records[c.event]
        if op == "add":
            timeout = None if rec.kind == "write" and not c.use_timeout else c.timeout
            rec.add(max(timeout, MIN_INTERVAL) if rec.persist else timeout)
        elif op == "activate":
            rec.activate(ACTIVATE_RES[rec.kind])
        elif op == "delete":
            rec.delete_nonblocking()
        elif op == "delete_blocking":
            rec.delete_blocking()
        else:
            rec.set_priority(c.priority)
