"""epoll(7) backend.

Kernel quirks handled here, as libevent's epoll.c does:
- EPOLL_CTL_ADD on an fd already in the set fails with EEXIST (a dup'd or reused fd number):
  retry as MOD. EPOLL_CTL_MOD on an fd the kernel forgot (closed and reopened) fails with
  ENOENT: retry as ADD.
- Closing an fd removes it from the set silently, so DEL/MOD on it fail with EBADF/ENOENT
  (or EPERM): when removing interest that is not an error.
- EPOLLHUP/EPOLLERR wake both readers and writers; EPOLLRDHUP is EV_CLOSED; EV_ET is EPOLLET,
  and is reported back in `what` to edge-triggered events.
- Regular files are refused with EPERM: that surfaces from add() as an OSError.
"""

from __future__ import annotations

import errno
import select

from ..flags import EV_CLOSED, EV_ET, EV_FEATURE_EARLY_CLOSE, EV_FEATURE_ET, EV_FEATURE_O1, EV_READ, EV_WRITE
from ._interface import WAIT_LIMIT_INT_MS, Backend, Translation

_IN, _OUT, _RDHUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLRDHUP
_HUP_ERR = select.EPOLLHUP | select.EPOLLERR
_GONE = (errno.EBADF, errno.ENOENT, errno.EPERM)


def _to_epoll(bits: int) -> int:
    mask = 0
    if bits & EV_READ:
        mask |= _IN
    if bits & EV_WRITE:
        mask |= _OUT
    if bits & EV_CLOSED:
        mask |= _RDHUP
    if bits & EV_ET:
        mask |= select.EPOLLET
    return mask


def _to_ev(mask: int) -> int:
    if mask & _HUP_ERR:
        bits = EV_READ | EV_WRITE
    else:
        bits = (EV_READ if mask & _IN else 0) | (EV_WRITE if mask & _OUT else 0)
    if mask & _RDHUP:
        bits |= EV_CLOSED
    # As libevent's epoll: EV_ET rides along, so an edge-triggered event's `what` carries it.
    return bits | EV_ET


class EpollBackend(Backend):
    name = "epoll"
    features = EV_FEATURE_ET | EV_FEATURE_O1 | EV_FEATURE_EARLY_CLOSE
    max_wait = WAIT_LIMIT_INT_MS
    need_reinit = True

    def __init__(self) -> None:
        self._ep = select.epoll()
        self.ev_bits = Translation(_to_ev)
        # The C method itself, no Python frame in between: up to 1023 (FD_SETSIZE-1) ready fds
        # a call, the rest come next pass (level-triggered or still on epoll's ready list).
        # epoll.poll takes None (forever) or seconds, as dispatch() must.
        self.dispatch = self._ep.poll

    def fileno(self) -> int:
        return self._ep.fileno()

    def add(self, fd: int, old: int, new: int) -> None:
        mask = _to_epoll(old | new)
        try:
            if old & ~EV_ET:
                self._modify_or_register(fd, mask)
            else:
                self._register_or_modify(fd, mask)
        except OSError as exc:
            raise OSError(exc.errno, f"epoll: cannot watch fd {fd}: {exc.strerror}") from None

    def _register_or_modify(self, fd: int, mask: int) -> None:
        try:
            self._ep.register(fd, mask)
        except FileExistsError:
            self._ep.modify(fd, mask)

    def _modify_or_register(self, fd: int, mask: int) -> None:
        try:
            self._ep.modify(fd, mask)
        except FileNotFoundError:
            self._ep.register(fd, mask)

    def delete(self, fd: int, old: int, gone: int) -> None:
        left = old & ~gone
        try:
            if left & ~EV_ET:
                self._ep.modify(fd, _to_epoll(left))
            else:
                self._ep.unregister(fd)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise

    def close(self) -> None:
        self._ep.close()
