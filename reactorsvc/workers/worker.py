"""Worker: a thread that owns one EventBase and the connections handed to it.

The supervisor hands an accepted socket over by appending it to this worker's inbox and
posting one `call_soon_threadsafe(self._take)`: the post wakes the worker through its base's
notifier (hand-offs made while it is awake share one wake-up), and `_take` starts the
Connection here, in the worker's thread, so every protocol callback of the connection runs
in this thread, connection_made first. No event is registered for the hand-off itself (an
earlier one-shot EV_WRITE event cost an epoll_ctl ADD and DEL and a base-lock round trip per
connection: benchmarks/scaling.py churn).

With ``Server(accept="workers")`` the worker also accepts: each TCP listener has one Listener
per worker on that worker's base (workers/peraccept.py), whose accept hook calls
``accepted()`` here, in this thread: the connection starts at once, with no inbox, post or
supervisor on its path.

Shared state and its rule (docs/threads.md lists every one):
- `handed`: written only by the supervisor thread (handoff()); `received`, `accepts`, `errors`,
  `connections_total`: written only by this worker's thread. Others read them (one int load).
- `_inbox`: a deque; the supervisor appends, this thread pops: each a single atomic deque
  operation on every build.
- `connections` and the totals of closed connections change together under `_lock`, which
  stats() takes to read a consistent snapshot (a connection closing meanwhile is counted once).
- `_stop`: set once (False to True) by whichever thread stops the worker; `dead`: set once by
  this thread. A store of one attribute is atomic; a reader at worst sees it one pass late.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from typing import Any, Callable

import structlog

from ..base import EventBase, EventConfig
from ..base.flags import EVLOOP_NO_EXIT_ON_EMPTY, EVLOOP_NONBLOCK
from ..io.connection import Connection

_log = structlog.get_logger("reactorsvc.workers")


class Worker:
    """One loop thread. handoff() and stats() are thread-safe; the rest runs in its thread."""

    def __init__(self, index: int, make_config: Callable[[], EventConfig | None],
                 on_death: Callable[[Worker, BaseException], Any] | None = None,
                 on_close: Callable[[Worker, Any], Any] | None = None) -> None:
        self.index = index
        self.base = EventBase(make_config())
        self.connections: dict[Connection, Any] = {}   # connection -> its handoff; under _lock
        self._lock = threading.Lock()   # connections + the closed totals, for stats() readers
        self._inbox: deque = deque()    # (sock, handoff): supervisor appends, this thread pops
        self.handed = 0            # written by the supervisor thread only
        self.received = 0          # this worker's thread only, like the counters below
        self.accepts = 0           # connections this worker accepted itself (accept="workers")
        self.connections_total = 0
        self.errors = 0
        self.tls_handshake_failures = 0   # this worker's thread only
        self._bytes_in_closed = self._bytes_out_closed = 0   # under _lock
        self._on_death = on_death
        self._on_close = on_close
        self._stop = False
        self._draining = False  # this worker's thread only: drain() each connection it starts
        self.dead = False
        self.thread = threading.Thread(target=self._run, name=f"reactorsvc-worker-{index}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop:
                self.base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
        except BaseException as exc:  # an injected fault, a backend failure: contain it
            self.dead = True
            _log.error("worker_died", worker=self.index, error=repr(exc), exc_info=True)
            self._abort_all()
            if self._on_death is not None:
                self._on_death(self, exc)

    def _abort_all(self) -> None:
        """After the loop died: close every connection's socket and every pending handoff."""
        with self._lock:
            doomed = list(self.connections.items())
            self.connections.clear()
        for conn, handoff in doomed:
            sock = conn.get_extra_info("socket")
            if sock is not None:
                sock.close()
            self.errors += 1
            self._notify_close(handoff)
        self._refuse_inbox()

    def _refuse_inbox(self) -> None:
        """Close the sockets handed over but never taken (the loop died or is gone)."""
        while True:
            try:
                sock, handoff = self._inbox.popleft()
            except IndexError:
                return
            self.received += 1
            sock.close()
            self._notify_close(handoff)

    # -- handoff -----------------------------------------------------------------------------

    def handoff(self, sock: socket.socket, spec: Any) -> None:
        """Supervisor thread: give `sock` to this worker (inbox + one cross-thread post)."""
        self.handed += 1
        self._inbox.append((sock, spec))
        try:
            self.base.call_soon_threadsafe(self._take)
        except BaseException:  # a freed base: the caller closes the socket
            try:
                self._inbox.remove((sock, spec))
            except ValueError:
                return  # _refuse_inbox() took it meanwhile: closed and reported as ended
            self.handed -= 1
            raise

    def load(self) -> int:
        """Live connections plus handoffs in flight (for least_connections).

        `received` is read first and bumped only once the connection is in `connections`,
        so a handoff being taken in counts twice for a moment, never zero times."""
        received = self.received
        return len(self.connections) + self.handed - received

    def _take(self) -> None:
        """This thread: start what the inbox holds (several hand-offs may share one post)."""
        inbox = self._inbox
        while inbox:
            try:
                sock, spec = inbox.popleft()
            except IndexError:
                return
            self._serve(sock, spec, True)

    def accepted(self, sock: socket.socket, spec: Any) -> None:
        """This thread (a Listener on this worker's base accepted `sock`): serve it here."""
        self.accepts += 1
        self._serve(sock, spec, handed=False)

    def _serve(self, sock: socket.socket, spec: Any, handed: bool) -> None:
        """Start `sock`'s connection. A handed-over socket bumps `received` only once the
        connection is in `connections` (or is closed) and before the close is reported, so
        load() never counts it zero times and a drain waiter sees it gone."""
        if self._stop:
            self.received += handed
            sock.close()
            self._notify_close(spec)
            return
        try:
            protocol = spec.protocol_factory()
            conn = Connection.start(self.base, sock, protocol, worker=self, options=spec.options,
                                    on_close=self._closed)
        except Exception:
            _log.error("connection_start_failed", worker=self.index, listener=spec.name, exc_info=True)
            self.errors += 1
            self.received += handed
            sock.close()
            self._notify_close(spec)
            return
        with self._lock:
            self.connections[conn] = spec
        self.received += handed
        self.connections_total += 1
        if self._draining:  # accepted before the listeners closed, handed over after the drain
            self.base.call_soon(conn.drain)  # after connection_made (queued by start())

    def _closed(self, conn: Connection) -> None:
        if conn.handshake_failed:
            self.tls_handshake_failures += 1
        with self._lock:
            handoff = self.connections.pop(conn, None)
            self._bytes_in_closed += conn.bytes_in
            self._bytes_out_closed += conn.bytes_out
        self._notify_close(handoff)

    def _notify_close(self, handoff: Any) -> None:
        if self._on_close is not None:
            self._on_close(self, handoff)

    # -- stopping (any thread) ---------------------------------------------------------------

    def call(self, fn: Callable, *args: Any) -> None:
        """Run fn(*args) in this worker's thread (thread-safe, never blocks)."""
        self.base.call_soon_threadsafe(fn, *args)

    def drain_connections(self, listener: Any = None) -> None:
        """Worker thread: tell each connection's protocol the server drains (Connection.drain);
        only those accepted by ``listener`` when given (a reload retiring it), else all, and
        every connection handed over from now on."""
        if listener is None:
            self._draining = True
        for conn, handoff in list(self.connections.items()):
            if listener is None or getattr(handoff, "listener", None) is listener:
                conn.drain()

    def close_connections(self) -> None:
        """Worker thread: abort what is still open (connection_lost(None) on each)."""
        for conn in list(self.connections):
            conn.abort()

    def request_stop(self) -> None:
        """Any thread: make the loop return and the thread end."""
        self._stop = True
        if not self.base.is_closed():
            self.base.loopbreak()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def free(self) -> None:
        """After the thread ended: run what its loop still owed (connection_lost of aborted
        connections is deferred), close what is left, free the base (closes its fds)."""
        if self.thread.is_alive() or self.base.is_closed():
            return
        if not self.dead:
            try:
                self.base.loop(EVLOOP_NONBLOCK)
            except Exception:
                _log.error("worker_final_pass_failed", worker=self.index, exc_info=True)
        for conn in list(self.connections):
            sock = conn.get_extra_info("socket")
            if sock is not None:
                sock.close()
        self._refuse_inbox()  # handed over after the loop's last pass
        self.base.free()

    def inherit_counters(self, dead: Worker) -> None:
        """Supervisor thread, before this worker starts: carry a dead predecessor's totals
        over, so stats() never go backwards (the dead thread has ended: nothing writes them)."""
        self.connections_total += dead.connections_total
        self.accepts += dead.accepts
        self.errors += dead.errors
        self.tls_handshake_failures += dead.tls_handshake_failures
        self._bytes_in_closed += dead._bytes_in_closed + sum(c.bytes_in for c in dead.connections)
        self._bytes_out_closed += dead._bytes_out_closed + sum(c.bytes_out for c in dead.connections)

    def stats(self) -> dict:
        """Any thread: this worker's counters (bytes of live connections read as they stand)."""
        with self._lock:
            live = list(self.connections)
            bytes_in, bytes_out = self._bytes_in_closed, self._bytes_out_closed
        counters = self.base.counters()
        return {
            "index": self.index,
            "connections": len(live),
            "connections_total": self.connections_total,
            "bytes_in": bytes_in + sum(c.bytes_in for c in live),
            "bytes_out": bytes_out + sum(c.bytes_out for c in live),
            "callbacks": counters["callbacks"],
            "wakeups": counters["wakeups"],
            "iterations": counters["iterations"],
            "handoffs_in_flight": self.handed - self.received,
            "accepts": self.accepts,
            "errors": self.errors,
            "tls_handshake_failures": self.tls_handshake_failures,
            "alive": not self.dead and self.thread.is_alive(),
        }
