"""Suite-wide fixtures: every test leaves no fd and no thread behind."""

from __future__ import annotations

import os
import threading
import time

import pytest


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves fds open or threads running (libevent's test-fdleak)."""
    fds_before = _open_fds()
    threads_before = _live_threads()
    yield
    if request.node.get_closest_marker("allow_leaks"):
        return
    # Threads told to stop may need a moment to finish: wait on them, with a bound.
    deadline = time.monotonic() + 5.0
    extra = _live_threads() - threads_before
    for t in extra:
        t.join(max(0.0, deadline - time.monotonic()))
    leaked_threads = [t.name for t in _live_threads() - threads_before]
    leaked_fds = sorted(_open_fds() - fds_before)
    details = {}
    for fd in leaked_fds:
        try:
            details[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the listdir fd itself, gone by now
    leaked_fds = sorted(details)
    assert not leaked_threads, f"test leaked threads: {leaked_threads}"
    assert not leaked_fds, f"test leaked fds: {details}"
