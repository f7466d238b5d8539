"""kqueue(2) backend (BSD, macOS); only offered where select.kqueue exists.

Quirks: read and write interest are separate filters, each added and deleted on its own;
deleting a filter of a closed fd fails with EBADF/ENOENT, which is not an error when removing
interest. EV_ET maps to EV_CLEAR. EV_CLOSED is not supported (no EARLY_CLOSE feature).
"""

from __future__ import annotations

import errno
import select

from ..flags import EV_ET, EV_FEATURE_ET, EV_FEATURE_FDS, EV_FEATURE_O1, EV_READ, EV_WRITE
from ._interface import WAIT_LIMIT_TIMESPEC, Backend, identity

_GONE = (errno.EBADF, errno.ENOENT)


class KqueueBackend(Backend):
    name = "kqueue"
    features = EV_FEATURE_ET | EV_FEATURE_O1 | EV_FEATURE_FDS
    max_wait = WAIT_LIMIT_TIMESPEC
    need_reinit = True

    def __init__(self) -> None:
        self.ev_bits = identity()
        self._kq = select.kqueue()
        self._max = 64

    def _ctl(self, fd: int, filt: int, flags: int) -> None:
        self._kq.control([select.kevent(fd, filt, flags)], 0, 0)

    def add(self, fd: int, old: int, new: int) -> None:
        flags = select.KQ_EV_ADD | (select.KQ_EV_CLEAR if (old | new) & EV_ET else 0)
        if new & EV_READ:
            self._ctl(fd, select.KQ_FILTER_READ, flags)
        if new & EV_WRITE:
            try:
                self._ctl(fd, select.KQ_FILTER_WRITE, flags)
            except OSError:
                if new & EV_READ:  # leave no half state behind
                    self.delete(fd, old | EV_READ, EV_READ)
                raise

    def delete(self, fd: int, old: int, gone: int) -> None:
        for bit, filt in ((EV_READ, select.KQ_FILTER_READ), (EV_WRITE, select.KQ_FILTER_WRITE)):
            if gone & bit:
                try:
                    self._ctl(fd, filt, select.KQ_EV_DELETE)
                except OSError as exc:
                    if exc.errno not in _GONE:
                        raise

    def dispatch(self, timeout: float | None) -> list[tuple[int, int]]:
        events = self._kq.control(None, self._max, timeout)
        if len(events) == self._max and self._max < 4096:
            self._max *= 2
        ready: dict[int, int] = {}
        for kev in events:
            bit = EV_READ if kev.filter == select.KQ_FILTER_READ else EV_WRITE
            if kev.flags & select.KQ_EV_ERROR:
                bit = EV_READ | EV_WRITE
            ready[kev.ident] = ready.get(kev.ident, 0) | bit
        return list(ready.items())

    def close(self) -> None:
        self._kq.close()
