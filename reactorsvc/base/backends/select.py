"""select(2) backend.

select() cannot watch fds >= FD_SETSIZE (1024 on Linux): add() refuses them with a clear
ValueError instead of failing later inside the loop. A closed fd makes select() fail with
EBADF for the whole set; we then find the closed fds with fstat and report them readable and
writable (as poll reports POLLNVAL), so their owners see the error and the loop survives.
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
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def add(self, fd: int, old: int, new: int) -> None:
        if fd >= FD_SETSIZE:
            raise ValueError(f"fd: {fd} is too large for the select backend (FD_SETSIZE is "
                             f"{FD_SETSIZE}); use epoll or poll")
        os.fstat(fd)
        if new & EV_READ:
            self._readers.add(fd)
        if new & EV_WRITE:
            self._writers.add(fd)

    def delete(self, fd: int, old: int, gone: int) -> None:
        if gone & EV_READ:
            self._readers.discard(fd)
        if gone & EV_WRITE:
            self._writers.discard(fd)

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
        for fd in self._readers | self._writers:
            try:
                os.fstat(fd)
            except OSError:
                bad.append((fd, EV_READ | EV_WRITE))
        return bad
