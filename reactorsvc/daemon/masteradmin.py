"""What the master's admin endpoint serves: the source AdminProtocol (admin.py) reads.

/healthz: 200 while the master runs and at least one child serves, else 503. /metrics:
every child's last reported figures with a `process` label (its slot), plus process_* figures
of the master and each child read from /proc now (metrics.render_master_metrics). A child
that has not answered keeps its last figures (their age is exported); one that never did is
absent. /debug/events: each child's last reported dump. Nothing here waits on a child.

Thread contract: the master's single thread.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, TextIO

from .metrics import render_master_metrics
from .procstats import process_stats

if TYPE_CHECKING:
    from .master import Master


class _Dump:
    """Stands in for a child's EventBase in bases(): dump_events() writes its last dump."""

    def __init__(self, text: str) -> None:
        self._text = text

    def dump_events(self, file: TextIO) -> None:
        file.write(self._text or "  no report from this process yet\n")


class MasterAdmin:
    """AdminProtocol's source in the master (see the module docstring)."""

    def __init__(self, master: Master) -> None:
        self._m = master

    @property
    def draining(self) -> bool:
        return self._m.state != "running" or not self._m.serving()

    def _reporting(self) -> list:
        return sorted((c for c in self._m.children.values() if c.stats is not None),
                      key=lambda c: (c.slot, c.generation))

    @staticmethod
    def _label(child) -> str:
        return f"{child.slot}" if child.state != "draining" else f"{child.slot}-old-{child.pid}"

    def stats(self) -> dict:
        return {str(self._label(c)): c.stats for c in self._reporting()}

    def render_metrics(self) -> str:
        now = time.monotonic()
        reporting = self._reporting()
        children = [(self._label(c), c.stats) for c in reporting]
        procs = [("master", os.getpid())] + [(self._label(c), c.pid) for c in
                                             sorted(self._m.children.values(), key=lambda c: c.slot)]
        figures = [(label, f) for label, pid in procs if (f := process_stats(pid)) is not None]
        master = {"serving": len(self._m.serving()), "restarts": self._m.restarts,
                  "stats_age": [(self._label(c), round(now - c.stats_at, 3)) for c in reporting]}
        return render_master_metrics(children, figures, self.draining, master)

    def bases(self) -> list:
        return [(f"process {self._label(c)} (pid {c.pid})", _Dump(c.events_text))
                for c in self._reporting()]
