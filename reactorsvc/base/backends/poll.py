"""poll(2) backend.

poll() re-reads its fd list on every call, so interest added from another thread is seen
only after the loop wakes (the base notifies for that). A closed fd is reported as POLLNVAL
instead of failing the call; like libevent's poll.c we report HUP/ERR/NVAL as readable and
writable so the owner's read or write sees the error. add() checks the fd with fstat so a
closed fd fails there, as it does with epoll.
"""

from __future__ import annotations

import os
import select

from ..flags import EV_FEATURE_FDS, EV_READ, EV_WRITE
from ._interface import WAIT_LIMIT_INT_MS, Backend, Translation

_IN, _OUT = select.POLLIN, select.POLLOUT
_BAD = select.POLLHUP | select.POLLERR | select.POLLNVAL


def _to_poll(bits: int) -> int:
    return (_IN if bits & EV_READ else 0) | (_OUT if bits & EV_WRITE else 0)


def _to_ev(mask: int) -> int:
    if mask & _BAD:
        return EV_READ | EV_WRITE
    return (EV_READ if mask & _IN else 0) | (EV_WRITE if mask & _OUT else 0)


class PollBackend(Backend):
    name = "poll"
    features = EV_FEATURE_FDS
    max_wait = WAIT_LIMIT_INT_MS
    # A poll object inherited across fork while the parent's loop sat in poll() stays marked
    # busy ("concurrent poll() invocation"): the child needs a fresh one.
    need_reinit = True

    def __init__(self) -> None:
        self._poll = select.poll()
        self.ev_bits = Translation(_to_ev)

    def add(self, fd: int, old: int, new: int) -> None:
        os.fstat(fd)  # EBADF here, not from a later poll()
        self._poll.register(fd, _to_poll(old | new))

    def delete(self, fd: int, old: int, gone: int) -> None:
        left = _to_poll(old & ~gone)
        if left:
            self._poll.modify(fd, left)
        else:
            try:
                self._poll.unregister(fd)
            except KeyError:
                pass

    def dispatch(self, timeout: float | None) -> list[tuple[int, int]]:
        return self._poll.poll(None if timeout is None else timeout * 1000.0)
