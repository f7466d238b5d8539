"""Prometheus' standard process metrics for any pid, read from /proc (Linux).

process_stats(pid) → {"cpu_seconds", "resident_bytes", "open_fds", "start_time"} or None when
the process is gone or /proc is missing. Pure reads; thread-safe.
"""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _boot_time() -> float:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


_BOOT = _boot_time()


def process_stats(pid: int) -> dict | None:
    """CPU seconds (user + system), resident bytes, open fds and start time of `pid`."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
        open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return None
    # The command name (field 2) may hold spaces or parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
    return {"cpu_seconds": (utime + stime) / _TICKS, "resident_bytes": rss_pages * _PAGE,
            "open_fds": open_fds, "start_time": _BOOT + start / _TICKS}
