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
#: epoll_wait()/poll() take an int of milliseconds: INT_MAX ms, ~24.86 days (whole seconds).
WAIT_LIMIT_INT_MS = float((2**31 - 1) // 1000)
#: select()/kevent() take a timeval/timespec, which CPython converts through its 64-bit
#: nanosecond time type (~292 years); 1e9 s (~31 years) stays well inside it.
WAIT_LIMIT_TIMESPEC = 1e9


class Backend:
    """Base class: name, features, need_reinit and the four operations."""

    name = "?"
    features = 0
    #: True when a forked child must build a new kernel object (epoll, kqueue).
    need_reinit = False
    #: raw readiness value → EV_* bits; a backend that reports EV bits already uses Identity.
    ev_bits: dict
    #: The longest wait (seconds) the kernel call accepts; the loop never asks for more and
    #: simply waits again (libevent's MAX_EPOLL_TIMEOUT_MSEC). Each backend states its own.
    max_wait = WAIT_LIMIT_TIMESPEC

    def add(self, fd: int, old: int, new: int) -> None:
        """Start watching `new` bits on fd; `old` is what was watched before."""
        raise NotImplementedError

    def delete(self, fd: int, old: int, gone: int) -> None:
        """Stop watching `gone` bits on fd; `old` is what was watched before."""
        raise NotImplementedError

    def dispatch(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to `timeout` seconds (None: forever); return [(fd, raw)] where
        `self.ev_bits[raw]` is the EV_* bits (the kernel's mask, translated lazily)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the kernel object; idempotent."""


class Translation(dict):
    """raw mask → EV bits, computed by `fn` on first sight of each mask (there are few)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self._fn = fn

    def __missing__(self, raw: int) -> int:
        bits = self[raw] = self._fn(raw)
        return bits


def _same(bits: int) -> int:
    return bits


def identity() -> Translation:
    """For backends whose dispatch() already reports EV bits."""
    return Translation(_same)
