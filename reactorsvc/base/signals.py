"""Signal delivery through signal.set_wakeup_fd (libevent's evsig, the self-pipe trick).

Python runs signal handlers only in the main thread, between bytecodes, and only the main
thread may install them. Its C-level handler, however, writes the signal number to the
wakeup fd at once, from whatever thread the kernel picked. So each base that watches signals
owns a socketpair; its write end becomes the process's wakeup fd, a no-op Python handler
keeps the C handler armed, and the loop reads signal numbers from the read end like any fd.

Only one base receives signals at a time (as in libevent); the previous handler of each
signal and the previous wakeup fd are restored when the last signal event is deleted.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections import Counter

from ..errors import ReactorError

_owner_lock = threading.Lock()
_owner: SignalSource | None = None


def _noop_handler(signum: int, frame: object) -> None:
    """Installed so Python's C handler writes to the wakeup fd; the base does the work."""


def _require_main_thread(action: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise ReactorError(
            f"cannot {action} a signal event outside the main thread: Python lets only the "
            "main thread install signal handlers")


class SignalSource:
    """One base's signal receiver. watch/unwatch: main thread only; drain: loop thread."""

    def __init__(self) -> None:
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._previous: dict[int, object] = {}
        self._previous_wakeup_fd: int | None = None

    @property
    def fd(self) -> int:
        return self._rsock.fileno()

    def watch(self, signum: int) -> None:
        """Start receiving `signum` (first event for it on this base)."""
        global _owner
        _require_main_thread("add")
        with _owner_lock:
            if _owner is not None and _owner is not self:
                raise ReactorError("another EventBase already receives signals; only one base at "
                                   "a time can (delete its signal events first)")
            if _owner is None:
                self._previous_wakeup_fd = signal.set_wakeup_fd(self._wsock.fileno(),
                                                                warn_on_full_buffer=False)
                _owner = self
        try:
            self._previous[signum] = signal.signal(signum, _noop_handler)
        except (OSError, ValueError) as exc:
            if not self._previous:
                self._release()
            raise ValueError(f"signum: cannot handle signal {signum}: {exc}") from None

    def unwatch(self, signum: int) -> None:
        """Stop receiving `signum`: restore its previous handler."""
        _require_main_thread("delete")
        previous = self._previous.pop(signum, None)
        if previous is not None:
            signal.signal(signum, previous)
        if not self._previous:
            self._release()

    def _release(self) -> None:
        global _owner
        with _owner_lock:
            if _owner is self:
                signal.set_wakeup_fd(self._previous_wakeup_fd if self._previous_wakeup_fd is not None else -1)
                _owner = None
                self._previous_wakeup_fd = None

    def drain(self) -> Counter:
        """Read every pending signal number: {signum: times delivered}."""
        got: Counter = Counter()
        while True:
            try:
                data = self._rsock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return got
            if not data:
                return got
            got.update(data)

    def close(self) -> None:
        """Restore handlers where this thread may, release the wakeup fd, close the sockets."""
        if self._previous and threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous.clear()
        if threading.current_thread() is threading.main_thread():
            self._release()
        self._rsock.close()
        self._wsock.close()
