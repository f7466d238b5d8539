"""Cross-thread wake-up of a sleeping loop: eventfd, else a pipe, else a socketpair.

One wake-up path, coalesced (libuv's uv_async_send, libevent's is_notify_pending): `notify()`
writes only when no wake-up is pending; the loop's drain callback clears the flag before the
loop looks at what other threads queued, so a producer that saw the flag set is always served.
A failed write clears the flag, so later wake-ups are not suppressed.

Order matters in drain(): empty the fd first, then clear the flag. Clearing first would let a
producer set the flag and write between the two steps; the read would then swallow its
wake-up while the flag stayed set, and every later notify() would be coalesced into nothing
(a lost wake-up; the stress harness finds it within seconds).

Free-threaded CPython (no GIL): `pending` is a plain attribute written without a lock by
producers (True) and by the loop thread (False). A store or load of one attribute is atomic
on every build; the only outcome of two producers racing is that both see False and both
write (one spare wake-up, never a lost one). The order argued above holds because each
producer queues its item (a deque append, itself locked on 3.13t) before it reads `pending`,
and the loop reads its queue only after clearing it. The statistics are per-thread cells
(each written by its own thread only) summed on reading, so concurrent producers lose no
count without taking a lock on the hot path (a lock costs 2-3x a coalesced notify()).
"""

from __future__ import annotations

import os
import socket
import threading

import structlog

_log = structlog.get_logger("reactorsvc.base.notify")


def _make_fds() -> tuple[int, int, str]:
    """(read fd, write fd, kind, socket owner): both fds non-blocking and close-on-exec."""
    if hasattr(os, "eventfd"):
        try:
            fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            return fd, fd, "eventfd"
        except OSError:
            pass
    try:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC) if hasattr(os, "pipe2") else os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        return r, w, "pipe"
    except OSError:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        return a.detach(), b.detach(), "socketpair"


class Notifier:
    """Wakes one loop. notify() may be called from any thread and never blocks."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd, self.kind = _make_fds()
        self.pending = False          # see the module doc: producers set it, the loop clears it
        self._local = threading.local()
        self._cells: list[list[int]] = []   # one [sent, coalesced, failed] per producer thread

    def _cell(self) -> list[int]:
        """This thread's counters (created on its first notify()); only this thread writes it."""
        try:
            return self._local.cell
        except AttributeError:
            cell = self._local.cell = [0, 0, 0]
            self._cells.append(cell)  # list.append is atomic on every build
            return cell

    @property
    def sent(self) -> int:
        return sum(c[0] for c in list(self._cells))

    @property
    def coalesced(self) -> int:
        return sum(c[1] for c in list(self._cells))

    @property
    def failed(self) -> int:
        return sum(c[2] for c in list(self._cells))

    def notify(self) -> None:
        if self.pending:
            self._cell()[1] += 1
            return
        self.pending = True
        try:
            if self.kind == "eventfd":
                os.eventfd_write(self.write_fd, 1)
            else:
                os.write(self.write_fd, b"\0")
            self._cell()[0] += 1
        except BlockingIOError:
            self._cell()[0] += 1  # the fd is already full of wake-ups: the loop will wake anyway
        except OSError as exc:
            self.pending = False
            self._cell()[2] += 1
            _log.warning("notify_failed", fd=self.write_fd, error=str(exc))

    def reopen(self) -> None:
        """After fork (reinit()): close the fds and make new ones; this object stays."""
        self.close()
        self.read_fd, self.write_fd, self.kind = _make_fds()
        self.pending = False

    def drain(self) -> None:
        """Loop thread: empty the fd, then clear the pending flag (see the module doc)."""
        try:
            if self.kind == "eventfd":
                os.eventfd_read(self.read_fd)
            else:
                while os.read(self.read_fd, 4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass
        self.pending = False

    def __del__(self) -> None:
        # A base dropped without free() is collected with its notifier: its fds go with it
        # (select.epoll closes the backend's the same way); after close() this does nothing.
        try:
            self.close()
        except Exception:  # late in interpreter shutdown a module global may be gone
            pass

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.read_fd = self.write_fd = -1
