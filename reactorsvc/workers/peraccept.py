"""WorkerListeners: one TCP listener bound once per worker, each accepting in its worker's loop.

``Server(accept="workers")`` serves each TCP listener this way (asyncio's advice for free
threading: one loop per thread, each with its own ``create_server(reuse_port=True)``). Every
worker gets its own listening socket on the same address with SO_REUSEPORT — the first bind
picks the port (port 0), the others bind the address it got — registered on that worker's
EventBase; the kernel spreads new connections over the sockets (a hash of the 4-tuple) and each
connection is served by the worker that accepted it (``Worker.accepted``): no supervisor, inbox
or cross-thread post on the connection path.

To the Supervisor a WorkerListeners looks like one Listener (``addresses``, ``counters()``,
``resume()``, ``set_options()``, ``close()``, ``options``): it is the ``listener`` of its
connections' hand-off records, so a reload that retires it drains exactly its connections.
The server-wide ``max_connections`` is one ConnectionQuota (io/quota.py, lock-protected) that
every member takes a slot from before each accept.

Thread contract: the Supervisor's thread builds it and calls every method (or any thread before
the workers run). Members are built there too (Listener construction is thread-safe, paused);
everything done to a member afterwards runs in its worker's thread: posted with
``Worker.call``; ``close()`` waits (bounded) until every running worker has closed its member,
so the address is free when it returns. A worker whose loop is not running (not started yet,
dead, stopped) has its member handled directly, as Listener allows.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable

import structlog

from ..io.listener import Listener
from ..io.options import ListenerOptions
from ..io.quota import ConnectionQuota
from ..io.sockets import bind_tcp

_log = structlog.get_logger("reactorsvc.workers")
_CLOSE_WAIT = 5.0   # seconds close() waits for the workers (one stuck in a callback: bounded)

# on_accept(worker, member) -> the accept hook of that member (sock, addr) -> None
HookFactory = Callable[[Any, Listener], Callable[[socket.socket, Any], None]]


def is_tcp_address(where: Any) -> bool:
    """True for the (host, port) form, the only one a listener can be bound once per worker on
    (a Unix path cannot be bound twice; inherited sockets exist once)."""
    return isinstance(where, tuple) and len(where) == 2


class _Member:
    """A member Listener and the hook's view of it (the hook is built before the Listener)."""

    listener: Listener


class WorkerListeners:
    """``where`` ((host, port)) bound once per worker; see the module docstring."""

    def __init__(self, where: tuple, options: ListenerOptions, workers: list,
                 hook: HookFactory) -> None:
        self.options = options
        self._where = where
        self._hook = hook
        self._quota = ConnectionQuota(options.max_connections)
        self._workers: list = list(workers)        # index i: the worker of _members[i]
        self._members: list[Listener] = []
        self._paused = True
        self._closed = False
        self._retired = dict.fromkeys(("accepts", "rejected", "accept_pauses", "emfile",
                                       "accept_errors"), 0)   # members of dead workers
        try:
            for w in self._workers:
                self._members.append(self._bind(w))
        except BaseException:
            for member in self._members:
                member.close()
            raise

    def _bind(self, worker: Any) -> Listener:
        """A paused member on ``worker``'s base; after the first, on the first's address(es)."""
        member = _Member()
        options = self.options.replace(reuse_port=True)
        if not self._members:
            where: Any = self._where
        else:
            where = []
            try:
                for host, port in self._members[0].addresses:
                    where += bind_tcp(host, port, options.backlog, True)
            except BaseException:
                for sock in where:
                    sock.close()
                raise
        member.listener = Listener(worker.base, where, self._hook(worker, member),
                                   options=options, paused=True, quota=self._quota)
        return member.listener

    # -- the Listener face --------------------------------------------------------------------

    @property
    def addresses(self) -> list:
        return self._members[0].addresses if self._members else []

    @property
    def closed(self) -> bool:
        return self._closed

    def counters(self) -> dict:
        """The members' Listener.counters() summed, plus ``accept`` ("workers") and
        ``accepts_per_worker``. Any thread."""
        members = list(self._members)
        each = [m.counters() for m in members]
        total = {key: self._retired.get(key, 0) + sum(c[key] for c in each) for key in each[0]} \
            if each else dict(self._retired, open=0)
        total["accept"] = "workers"
        total["accepts_per_worker"] = [c["accepts"] for c in each]
        return total

    def resume(self) -> None:
        self._paused = False
        self._each(lambda m: m.resume())

    def set_options(self, options: ListenerOptions) -> None:
        """A reload: the new limit now (the quota), backlog and the rest in each worker."""
        if options.reuse_port != self.options.reuse_port:
            raise ValueError("reuse_port cannot change on a bound listener; bind a new address "
                             "or restart")
        self.options = options
        self._quota.set_limit(options.max_connections)
        member_options = options.replace(reuse_port=True)
        self._each(lambda m: m.set_options(member_options))

    def close(self) -> bool:
        """Close every member (each in its worker's thread); returns once they are closed
        (True), or False after _CLOSE_WAIT s for a worker stuck in a callback (its member
        closes when it returns; close_now() once the loops have ended). Idempotent."""
        if self._closed:
            return True
        self._closed = True
        done = self._each(lambda m: m.close())
        deadline = time.monotonic() + _CLOSE_WAIT
        if all(event.wait(max(0.0, deadline - time.monotonic())) for event in done):
            return True
        _log.warning("listener_close_slow", addresses=self.addresses, waited=_CLOSE_WAIT)
        return False

    def close_now(self) -> None:
        """Every worker's loop has ended: close whatever member is still open (idempotent)."""
        self._closed = True
        for member in self._members:
            member.close()

    # -- workers --------------------------------------------------------------------------------

    def replace_worker(self, index: int, fresh: Any) -> None:
        """Supervisor thread, before ``fresh`` starts: the worker at ``index`` died; close its
        member (its loop is gone) and bind one on ``fresh``'s base (paused or not as the rest).
        A failed bind is logged; the other workers go on serving the address."""
        old = self._members[index]
        old.close()
        for key in self._retired:
            self._retired[key] += old.counters()[key]
        self._workers[index] = fresh
        if self._closed:
            return
        try:
            member = self._bind(fresh)
        except Exception:
            _log.error("worker_listener_rebind_failed", worker=index, addresses=self.addresses,
                       exc_info=True)
            return
        self._members[index] = member
        if not self._paused:
            member.resume()   # fresh's loop is not running yet: allowed from this thread

    def _each(self, fn: Callable[[Listener], Any]) -> list[threading.Event]:
        """fn(member) in each member's worker thread; Events set when each has run."""
        done = []
        for worker, member in zip(list(self._workers), list(self._members)):
            if worker.dead or not worker.thread.is_alive():
                fn(member)   # its loop is not running: the Listener allows any thread
                continue
            event = threading.Event()

            def run(member: Listener = member, event: threading.Event = event) -> None:
                try:
                    fn(member)
                finally:
                    event.set()
            try:
                worker.call(run)
            except Exception:  # its base is gone (the worker ended meanwhile)
                fn(member)
                continue
            done.append(event)
        return done
