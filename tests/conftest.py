"""Suite-wide fixtures: every test leaves no fd and no thread behind; run_forked and
wait_until for the tests that fork or poll."""

from __future__ import annotations

import os
import threading
import time
import traceback
import warnings

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


def _run_forked(child) -> int:
    """Run child() in a forked process; its return value is the exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads alive
        pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = child()
        except BaseException:  # noqa: BLE001 -- anything escaping in the child is a failure
            traceback.print_exc()
            code = 98
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"child died: status {status:#x}"
    return os.WEXITSTATUS(status)


@pytest.fixture
def run_forked():
    """run_forked(child) -> the exit status of child() run in a forked process."""
    return _run_forked


def _wait_until(predicate, timeout: float = 5.0) -> bool:
    """Poll `predicate` (which itself waits on the loop) until true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return False


@pytest.fixture
def wait_until():
    """wait_until(predicate, timeout=5.0) -> whether predicate() became true in time."""
    return _wait_until
