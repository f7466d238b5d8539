"""The interface every backend implements (libevent's eventop, trio's IO manager).

A backend only knows fds and interest masks made of EV_READ | EV_WRITE | EV_CLOSED, plus
EV_ET as a registration mode. It never sees Event objects: evmap calls `add`/`delete` only
when the union of interests on an fd changes, and the base turns what `dispatch` returns
into active events. Not thread-safe: the base calls it with its lock held, except
`dispatch`, which only the loop thread calls.
"""

from __future__ import annotations

from ..flags import EV_CLOSED, EV_READ, EV_WRITE

IO_BITS = EV_READ | EV_WRITE | EV_CLOSED


class Backend:
    """Base class: name, features, need_reinit and the four operations."""

    name = "?"
    features = 0
    #: True when a forked child must build a new kernel object (epoll, kqueue).
    need_reinit = False

    def add(self, fd: int, old: int, new: int) -> None:
        """Start watching `new` bits on fd; `old` is what was watched before."""
        raise NotImplementedError

    def delete(self, fd: int, old: int, gone: int) -> None:
        """Stop watching `gone` bits on fd; `old` is what was watched before."""
        raise NotImplementedError

    def dispatch(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to `timeout` seconds (None: forever); return [(fd, EV_* bits)]."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the kernel object; idempotent."""
