"""select(2) backend.

select() cannot watch fds >= FD_SETSIZE (1024 on Linux): add() refuses them with a clear
ValueError instead of failing later inside the loop. A closed fd makes select() fail with
EBADF for the whole set; we then find the closed fds with fstat and report them readable and
writable (as poll reports POLLNVAL), so their owners see the error and the loop survives.

The fd sets are frozensets replaced on every change (copy on write): add()/delete() run in
any thread under the base lock while dispatch() waits without it, and select.select() would
otherwise iterate a set that another thread is resizing (a RuntimeError on free-threaded
CPython). At most FD_SETSIZE fds, so the copy stays cheap.
"""

from __future__ import annotations

import errno
import os
import select

from ..flags import EV_FEATURE_FDS, EV_READ, EV_WRITE
from ._interface import WAIT_LIMIT_TIMESPEC, Backend, identity

FD_SETSIZE = 1024


class SelectBackend(Backend):
    name = "select"
    features = EV_FEATURE_FDS
    max_wait = WAIT_LIMIT_TIMESPEC

    def __init__(self) -> None:
        self.ev_bits = identity()
        self._readers: frozenset[int] = frozenset()   # replaced, never mutated (see above)
        self._writers: frozenset[int] = frozenset()

    def add(self, fd: int, old: int, new: int) -> None:
        if fd >= FD_SETSIZE:
            raise ValueError(f"fd: {fd} is too large for the select backend (FD_SETSIZE is "
                             f"{FD_SETSIZE}); use epoll or poll")
        os.fstat(fd)
        if new & EV_READ:
            self._readers = self._readers | {fd}
        if new & EV_WRITE:
            self._writers = self._writers | {fd}

    def delete(self, fd: int, old: int, gone: int) -> None:
        if gone & EV_READ:
            self._readers = self._readers - {fd}
        if gone & EV_WRITE:
            self._writers = self._writers - {fd}

    def dispatch(self, timeout: float | None) -> list[tuple[int, int]]:
        try:
            r, w, _ = select.select(self._readers, self._writers, (), timeout)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            return self._closed_fds()
        if not w:
            return [(fd, EV_READ) for fd in r]
        ready = dict.fromkeys(r, EV_READ)
        for fd in w:
            ready[fd] = ready.get(fd, 0) | EV_WRITE
        return list(ready.items())

    def _closed_fds(self) -> list[tuple[int, int]]:
        bad = []
        for fd in self._readers | self._writers:  # one snapshot of each
            try:
                os.fstat(fd)
            except OSError:
                bad.append((fd, EV_READ | EV_WRITE))
        return bad
