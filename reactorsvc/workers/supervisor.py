"""Supervisor: the listeners on their own EventBase; accepts, picks a worker, hands off.

Runs in one thread (a thread of its own after Server.start(), the caller's in
serve_forever()). Each accepted socket goes to the worker the dispatch policy picks, through
Worker.handoff() — a cross-thread Event.add() on that worker's base. max_connections is the
Listener's: accepting pauses at the limit and resumes when a worker reports a close.
A worker that dies is replaced here, in this thread.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from ..base import EventBase, EventConfig
from ..io.listener import Listener
from .dispatch import make_policy
from .worker import Worker

_log = structlog.get_logger("reactorsvc.workers")


@dataclass
class ListenerSpec:
    """One listening endpoint and how its connections are served."""

    name: str
    protocol_factory: Callable[[], Any]
    where: Any                      # (host, port), a Unix path, or listening socket(s)
    backlog: int = 1024
    reuse_port: bool = False
    max_connections: int | None = None
    idle_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None
    write_buffer: tuple[int, int] | None = None   # (high, low)


class Supervisor:
    """Owns the supervisor base, the listeners and the worker pool (see module doc)."""

    def __init__(self, nworkers: int, dispatch: str, make_config: Callable[[], EventConfig | None]) -> None:
        self._make_config = make_config
        self._policy = make_policy(dispatch)
        self.base = EventBase(make_config())
        self.listeners: dict[str, Listener] = {}
        self.specs: dict[str, ListenerSpec] = {}
        self.workers: list[Worker] = [self._new_worker(i) for i in range(nworkers)]
        self.accepts = self.handoffs = self.rejected = self.errors = self.worker_restarts = 0
        self._closed_pauses = 0  # accept pauses of listeners since removed
        self.accepting = True
        self.on_close: Callable[[], Any] | None = None   # the Server's drain watcher

    def _new_worker(self, index: int) -> Worker:
        return Worker(index, self._make_config, on_death=self._worker_died, on_close=self._conn_closed)

    def start_workers(self) -> None:
        for w in self.workers:
            w.start()

    # -- listeners (the supervisor thread, or any thread before its loop runs) ----------------

    def add_listener(self, spec: ListenerSpec) -> Listener:
        if spec.name in self.listeners:
            raise ValueError(f"listener {spec.name!r} already exists")
        listener = Listener(self.base, spec.where, lambda sock, addr: self._on_accept(spec, sock, addr),
                            backlog=spec.backlog, reuse_port=spec.reuse_port,
                            max_connections=spec.max_connections)
        self.listeners[spec.name] = listener
        self.specs[spec.name] = spec
        _log.info("listener_started", listener=spec.name, addresses=listener.addresses)
        return listener

    def remove_listener(self, name: str) -> None:
        """Stop accepting on `name`; its open connections are left alone."""
        listener = self.listeners.pop(name)
        listener.close()
        self._closed_pauses += listener.counters()["accept_pauses"]
        self.specs.pop(name, None)
        _log.info("listener_closed", listener=name)

    def update_spec(self, name: str, spec: ListenerSpec) -> None:
        """New service options / timeouts for the next connections of `name`."""
        self.specs[name] = spec

    def close_listeners(self) -> None:
        self.accepting = False
        for name in list(self.listeners):
            self.remove_listener(name)

    # -- accept and hand off -------------------------------------------------------------------

    def _on_accept(self, spec: ListenerSpec, sock: socket.socket, addr: Any) -> None:
        self.accepts += 1
        spec = self.specs.get(spec.name, spec)  # a reload may have replaced the options
        listener = self.listeners.get(spec.name)
        if not self.accepting:
            self.rejected += 1
            sock.close()
            if listener is not None:
                listener.release()
            return
        worker = self.workers[self._policy(self.workers, addr)]
        self.handoffs += 1  # before the handoff: the connection may be served before it returns
        try:
            worker.handoff(sock, _Handoff(spec, listener))
        except Exception:
            self.handoffs -= 1
            _log.error("handoff_failed", worker=worker.index, exc_info=True)
            self.errors += 1
            raise  # the Listener closes the socket and counts it as rejected

    def _conn_closed(self, worker: Worker, handoff: Any) -> None:
        """A worker thread: one connection ended."""
        if handoff is not None and handoff.listener is not None:
            handoff.listener.release()
        if self.on_close is not None:
            self.on_close()

    # -- dead workers --------------------------------------------------------------------------

    def _worker_died(self, worker: Worker, exc: BaseException) -> None:
        """The dying worker's thread: ask the supervisor thread to replace it."""
        try:
            self.base.call_soon_threadsafe(self._replace, worker)
        except Exception:
            _log.error("worker_not_replaced", worker=worker.index, exc_info=True)

    def _replace(self, dead: Worker) -> None:
        if not self.accepting or self.workers[dead.index] is not dead:
            return
        fresh = self._new_worker(dead.index)
        dead.join(5.0)  # it is ending: on_death was its last act
        fresh.inherit_counters(dead)
        self.workers[dead.index] = fresh
        fresh.start()
        self.worker_restarts += 1
        _log.warning("worker_replaced", worker=dead.index)
        dead.free()
        if self.on_close is not None:
            self.on_close()

    # -- numbers --------------------------------------------------------------------------------

    def stats(self) -> dict:
        pauses = self._closed_pauses + sum(
            listener.counters()["accept_pauses"] for listener in list(self.listeners.values()))
        return {"accepts": self.accepts, "handoffs": self.handoffs, "rejected": self.rejected,
                "errors": self.errors, "accept_pauses": pauses,
                "worker_restarts": self.worker_restarts}

    def listener_stats(self) -> dict[str, dict]:
        """{name: Listener.counters()} of the open listeners. Any thread: each counter has one
        writer, the supervisor thread, and the dict of listeners is copied before iterating."""
        return {name: listener.counters() for name, listener in list(self.listeners.items())}


@dataclass
class _Handoff:
    """What travels with an accepted socket to its worker."""

    spec: ListenerSpec
    listener: Listener | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.spec, name)
