"""ConnectionQuota: one max_connections limit shared by Listeners that run on several loops.

A Listener alone counts its open connections in its loop thread (``Listener._open``). When one
endpoint is served by a Listener per worker thread (``Server(accept="workers")``: each worker
accepts on its own SO_REUSEPORT socket), the limit is the server's, so the count must be shared:
a Listener given a quota takes a slot *before* each accept(2) (and gives it back when accept
says the queue is empty), so a client over the limit stays in the kernel backlog, as with one
Listener, and the limit holds exactly even when every worker accepts at the same instant.

A Listener refused a slot stops watching its sockets and leaves a waiter; the next ``give()``
that makes room calls every waiter (each posts a resume to its own loop thread), so accepting
resumes without any polling.

Thread contract: every method is thread-safe; the count, the limit and the waiters are under
``_lock`` (no reliance on a GIL). Waiters are called after the lock is released, from the
thread that gave the slot back, and must not block.
"""

from __future__ import annotations

import threading
from typing import Callable

from .._checks import check_optional_int

__all__ = ["ConnectionQuota"]


class ConnectionQuota:
    """At most ``limit`` connections (None: no limit, only counted) across its Listeners."""

    def __init__(self, limit: int | None) -> None:
        self._limit = check_optional_int(limit, "max_connections", 1)
        self._lock = threading.Lock()
        self._open = 0                                  # under _lock
        self._waiters: set[Callable[[], object]] = set()  # under _lock

    @property
    def open(self) -> int:
        """Slots taken now (any thread; a snapshot)."""
        with self._lock:
            return self._open

    @property
    def limit(self) -> int | None:
        return self._limit

    def take(self, waiter: Callable[[], object]) -> bool:
        """Take one slot; False at the limit, and then ``waiter()`` is called once a slot frees."""
        with self._lock:
            if self._limit is None or self._open < self._limit:
                self._open += 1
                return True
            self._waiters.add(waiter)
            return False

    def give(self) -> None:
        """Give one slot back (a connection ended, or accept found nothing after a take)."""
        with self._lock:
            self._open -= 1
            woken = self._pop_waiters_locked()
        for waiter in woken:
            waiter()

    def set_limit(self, limit: int | None) -> None:
        """A new limit (a reload); waiters are woken when it leaves room."""
        limit = check_optional_int(limit, "max_connections", 1)
        with self._lock:
            self._limit = limit
            woken = self._pop_waiters_locked()
        for waiter in woken:
            waiter()

    def _pop_waiters_locked(self) -> list[Callable[[], object]]:
        if not self._waiters or (self._limit is not None and self._open >= self._limit):
            return []
        woken = list(self._waiters)
        self._waiters.clear()
        return woken
