"""One forked child as the master sees it: its pid, its channel, its last figures.

spawn() forks a child (daemon/child.py runs in it) with a socketpair as its channel. The
master's side of the channel is non-blocking and watched by an Event on the master's base:
the child writes one JSON line per message ({"ready": pid} once serving, then a {"stats",
"events"} snapshot per "stats\\n" the master asks for). The master never waits on a child:
a request that cannot be written at once is skipped, one that gets no answer is asked again
later, and whatever a stuck child last said stays (``stats_at`` tells its age).

Thread contract: everything here runs in the master's single thread (its base is NOLOCK).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from typing import Any, Callable

import structlog

from ..base import Event, EventBase
from ..base.flags import EV_PERSIST, EV_READ
from ..io.balance import AcceptTable
from .config import MAX_PROCESSES, Config

_log = structlog.get_logger("reactorsvc.daemon")
_MAX_LINE = 16 * 1024 * 1024  # a snapshot of a huge /debug/events dump, at most


class Child:
    """A child process: ``state`` is starting → ready → draining (then it is reaped)."""

    def __init__(self, slot: int, generation: int, pid: int, chan: socket.socket) -> None:
        self.slot = slot
        self.generation = generation
        self.pid = pid
        self.chan = chan
        self.state = "starting"
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self.stats: dict | None = None
        self.events_text = ""
        self.stats_at: float | None = None
        self.asked_at: float | None = None
        self.on_ready: Callable[[Child], Any] | None = None
        self._buf = b""
        self._event: Event | None = None

    def __repr__(self) -> str:
        return f"<Child slot={self.slot} gen={self.generation} pid={self.pid} {self.state}>"

    def watch(self, base: EventBase) -> None:
        self._event = Event(base, self.chan.fileno(), EV_READ | EV_PERSIST, self._on_readable)
        self._event.add()

    def _on_readable(self, fd: int, what: int, arg: Any) -> None:
        try:
            data = self.chan.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the child is gone; SIGCHLD reaps it
            self.close_channel()
            return
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self._message(line)
        if len(self._buf) > _MAX_LINE:
            _log.warning("child_channel_overflow", pid=self.pid, bytes=len(self._buf))
            self._buf = b""

    def _message(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            _log.warning("child_channel_garbage", pid=self.pid, line=line[:200].decode(errors="replace"))
            return
        if "ready" in msg and self.state == "starting":
            self.state = "ready"
            self.ready_at = time.monotonic()
            _log.info("child_ready", slot=self.slot, pid=self.pid, generation=self.generation,
                      seconds=round(self.ready_at - self.started, 3))
            if self.on_ready is not None:
                self.on_ready(self)
        if "stats" in msg:
            self.stats = msg["stats"]
            self.events_text = msg.get("events", "")
            self.stats_at = time.monotonic()
            self.asked_at = None

    def ask_stats(self, now: float, retry_after: float = 2.0) -> None:
        """Ask for a snapshot, unless one is already asked for (and not yet overdue)."""
        if self.chan.fileno() < 0 or (self.asked_at is not None and now - self.asked_at < retry_after):
            return
        try:
            self.chan.send(b"stats\n")
            self.asked_at = now
        except (BlockingIOError, InterruptedError):
            pass  # the child is not reading: its figures go stale, the master goes on
        except OSError:
            self.close_channel()

    def signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass  # already exited, not yet reaped

    def drain(self) -> None:
        """SIGTERM: the child closes its listener copies, then drains (shutdown.grace)."""
        if self.state != "draining":
            self.state = "draining"
            self.signal(signal.SIGTERM)

    def close_channel(self) -> None:
        if self._event is not None:
            self._event.delete()
            self._event = None
        self.chan.close()


def accept_cell(slot: int, generation: int) -> int:
    """A child's cell in the master's AcceptTable (2 * MAX_PROCESSES cells): a rolling reload's
    new child and the old one it replaces (generations g+1 and g, one slot) never share one."""
    return (generation % 2) * MAX_PROCESSES + slot


def spawn(cfg: Config, sockets: dict[str, list[socket.socket]], slot: int, generation: int,
          master_signals: tuple, accepts: AcceptTable) -> Child:
    """Fork a child serving `cfg` on `sockets`. The caller holds `master_signals` blocked,
    so none of them can run a master handler in the child before it resets them. The child
    owns cell `accept_cell(slot, generation)` of `accepts` (io/balance.py)."""
    from .child import run_child
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    master_pid = os.getpid()
    try:
        pid = os.fork()
    except BaseException:
        mine.close()
        theirs.close()
        raise
    if pid == 0:
        mine.close()
        share = accepts.share(accept_cell(slot, generation))
        run_child(cfg, sockets, theirs, master_pid, slot, master_signals, share)  # never returns
    theirs.close()
    mine.setblocking(False)
    _log.info("child_started", slot=slot, pid=pid, generation=generation)
    return Child(slot, generation, pid, mine)
