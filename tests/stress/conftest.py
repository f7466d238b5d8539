"""Fixtures for the thread-race tests: one base per backend, loops running in threads.

`start_loop(base)` runs base.loop(EVLOOP_NO_EXIT_ON_EMPTY) in a thread and returns once the
loop runs (a call_soon_threadsafe() posted before the start has run); teardown breaks and
joins it before make_base frees the base (start_loop depends on make_base, so it is torn
down first).
"""

from __future__ import annotations

import threading
from threading import get_ident

import pytest

import reactorsvc
from reactorsvc import EVLOOP_NO_EXIT_ON_EMPTY


class LoopThread:
    """base.loop(EVLOOP_NO_EXIT_ON_EMPTY) in a daemon thread; with restart=True the loop is
    entered again after every return until stop(). `results` holds (rc, got_break, got_exit)."""

    def __init__(self, base: reactorsvc.EventBase, restart: bool) -> None:
        self.base = base
        self.restart = restart
        self.ident: int | None = None
        self.results: list[tuple[int, bool, bool]] = []
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-loop", daemon=True)

    def _run(self) -> None:
        self.ident = get_ident()
        try:
            while True:
                rc = self.base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
                self.results.append((rc, self.base.got_break(), self.base.got_exit()))
                if not self.restart or self._stopping.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 -- reported by stop()
            self.errors.append(exc)

    def start(self) -> None:
        running = threading.Event()
        self.base.call_soon_threadsafe(running.set)
        self.thread.start()
        assert running.wait(5), "the loop did not start"

    def barrier(self, timeout: float = 5.0) -> bool:
        """True once the loop has run a call posted now (it went round at least once)."""
        done = threading.Event()
        self.base.call_soon_threadsafe(done.set)
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> bool:
        self._stopping.set()
        if self.thread.is_alive():
            self.base.loopbreak()
        self.thread.join(timeout)
        return not self.thread.is_alive()


@pytest.fixture
def start_loop(make_base):
    """start_loop(base, restart=False) -> LoopThread, stopped (and checked) at teardown."""
    loops: list[LoopThread] = []

    def factory(base: reactorsvc.EventBase, restart: bool = False) -> LoopThread:
        lt = LoopThread(base, restart)
        loops.append(lt)
        lt.start()
        return lt

    yield factory
    stuck = [lt for lt in loops if not lt.stop()]
    assert not stuck, "a loop thread did not stop after loopbreak() (lost wake-up?)"
    errors = [exc for lt in loops for exc in lt.errors]
    assert not errors, f"loop() raised: {errors!r}"
