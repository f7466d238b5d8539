"""How many worker threads pay on the running interpreter: the daemon's `workers: auto`.

On free-threaded CPython with the GIL off (3.13t, 3.14t), worker threads run their loops in
parallel, so `auto` is one worker per CPU this process may run on. With a GIL (every default
build, or a free-threaded build where an extension turned it back on), one thread runs Python
at a time: extra workers add no throughput and cost CPU (each wake-up and hand-off crosses
threads; benchmarks/README.md measures it), so `auto` is 1 there, and the way past one core is
`processes: N`. An explicit count is always taken as given: several workers still keep one slow
callback from stalling every connection, which may be worth their cost.

`Server(workers=...)` keeps its documented default, `os.cpu_count()` (DESIGN.md); its docstring
says what that costs on a GIL build. Functions only, no state: safe from any thread.
"""

from __future__ import annotations

import os
import sys


def gil_enabled() -> bool:
    """Whether this interpreter runs with a GIL now (always True before 3.13)."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_workers(most: int) -> int:
    """Worker threads for `workers: auto`: one per usable CPU without a GIL, else 1; at most `most`."""
    return 1 if gil_enabled() else max(1, min(usable_cpus(), most))
