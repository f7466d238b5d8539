"""Suite-wide fixtures: every test leaves no fd and no thread behind; make_base (an EventBase on
exactly one backend, freed afterwards), pair (a non-blocking socketpair) and run_forked.
Plain helpers (waits, clients, /metrics) are in helpers.py."""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import warnings

import pytest

import reactorsvc


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


# -- EventBases and socketpairs, for every test package ------------------------------------

def build_base(method: str | None = None, flags: int = 0,
               dispatch: tuple | None = None) -> reactorsvc.EventBase:
    """An EventBase that uses exactly `method` (all others avoided), env ignored."""
    cfg = reactorsvc.EventConfig()
    if method is not None:
        for other in reactorsvc.supported_methods():
            if other != method:
                cfg.avoid_method(other)
    # The environment must not silently change the backend under test.
    cfg.set_flag(reactorsvc.EVENT_BASE_FLAG_IGNORE_ENV | flags)
    if dispatch is not None:
        cfg.set_max_dispatch_interval(*dispatch)
    base = reactorsvc.EventBase(cfg)
    if method is not None:
        assert base.method == method
    return base


def _free_quietly(base: reactorsvc.EventBase) -> None:
    try:
        base.free()
    except reactorsvc.ReactorError:
        pass  # freed by the test already, or still looping in a stuck thread (that test fails)


@pytest.fixture
def make_base(request):
    """Factory: make_base(method=None, flags=0, dispatch=None) -> EventBase, freed afterwards."""
    made = []

    def factory(method=None, flags=0, dispatch=None):
        base = build_base(method, flags, dispatch)
        made.append(base)
        return base

    yield factory
    for base in made:
        _free_quietly(base)


@pytest.fixture
def pair():
    """A connected, non-blocking AF_UNIX stream socketpair (closed afterwards)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
