"""Supervisor: the listeners on their own EventBase; accepts, picks a worker, hands off.

Runs in one thread (a thread of its own after Server.start(), the caller's in
serve_forever()). Each accepted socket goes to the worker the dispatch policy picks, through
Worker.handoff() — a cross-thread Event.add() on that worker's base. max_connections is the
Listener's: accepting pauses at the limit and resumes when a worker reports a close.
A worker that dies is replaced here, in this thread.

With accept="workers" a TCP listener is a WorkerListeners instead (workers/peraccept.py): bound
once per worker, each worker accepting and serving on its own base, nothing passing through
this thread; a Unix path or inherited sockets cannot be bound once per worker, so those
listeners keep the hand-off (the ``listener_started`` line names each one's ``accept``).

Shared state (docs/threads.md): every attribute here is written only by the supervisor thread
(or by the thread that builds the Supervisor, before any other thread runs). Other threads
(Server.stats(), addresses, the stop thread) read the counters as single int loads and copy
`workers` / `listeners` with list(), one atomic operation on a list or dict on every build.
A route's `spec` is read by worker threads too (the accept hook of a WorkerListeners member):
one attribute load of a value the supervisor thread replaces whole on a reload.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog

from ..base import EventBase, EventConfig
from ..io.balance import AcceptShare
from ..io.listener import Listener
from ..io.options import ListenerOptions
from .dispatch import check_accept, make_policy
from .peraccept import WorkerListeners, is_tcp_address
from .worker import Worker

_log = structlog.get_logger("reactorsvc.workers")


@dataclass(frozen=True)
class ListenerSpec:
    """One listening endpoint and how its connections are served (options: the io layer's)."""

    name: str
    protocol_factory: Callable[[], Any]
    where: Any                      # (host, port), a Unix path, or listening socket(s)
    options: ListenerOptions = field(default_factory=ListenerOptions)


class _Route:
    """What a Listener's accept hook reads: the spec it serves now (a reload replaces it)."""

    def __init__(self, spec: ListenerSpec) -> None:
        self.spec = spec                 # written in the supervisor thread only
        self.listener: Listener | None = None


def _same_place(route: _Route, where: Any) -> bool:
    """Whether ``where`` is what ``route`` listens on: as given, or as bound (port 0 → real)."""
    return route.spec.where == where or route.listener.addresses == [where]


def _named(exc: BaseException, name: str) -> BaseException:
    """``exc`` marked with the listener it is about (read by the daemon to name its config key)."""
    exc.listener = name  # type: ignore[attr-defined]
    return exc


class Supervisor:
    """Owns the supervisor base, the listeners and the worker pool (see module doc)."""

    def __init__(self, nworkers: int, dispatch: str, make_config: Callable[[], EventConfig | None],
                 share: AcceptShare | None = None, accept: str = "supervisor") -> None:
        check_accept(accept, dispatch, share)
        self.accept = accept
        self._make_config = make_config
        self._share = share   # the Listeners': sibling processes accept on the same sockets
        self._policy = make_policy(dispatch)
        self.base = EventBase(make_config())
        self.listeners: dict[str, Listener | WorkerListeners] = {}
        self.specs: dict[str, ListenerSpec] = {}
        self._routes: dict[str, _Route] = {}    # supervisor thread only, as the two above
        self.workers: list[Worker] = [self._new_worker(i) for i in range(nworkers)]
        # Written by the supervisor thread only; stats() reads them from any thread.
        self.accepts = self.handoffs = self.rejected = self.errors = self.worker_restarts = 0
        self._closed_pauses = 0  # accept pauses of listeners since removed
        self._unconfirmed: list[WorkerListeners] = []  # close not confirmed: swept at the end
        self.accepting = True
        self.on_close: Callable[[], Any] | None = None   # the Server's drain watcher

    def _new_worker(self, index: int) -> Worker:
        return Worker(index, self._make_config, on_death=self._worker_died, on_close=self._conn_closed)

    def start_workers(self) -> None:
        for w in self.workers:
            w.start()

    # -- listeners (the supervisor thread, or any thread before its loop runs) ----------------

    def add_listener(self, spec: ListenerSpec) -> Listener:
        """Bind and start ``spec``; an error carries ``.listener`` (its name), nothing is left."""
        if spec.name in self.listeners:
            raise ValueError(f"listener {spec.name!r} already exists")
        route = self._bind(spec, paused=False)
        self._register(route)
        return route.listener

    def _bind(self, spec: ListenerSpec, paused: bool) -> _Route:
        route = _Route(spec)
        try:
            if self.accept == "workers" and is_tcp_address(spec.where):
                route.listener = WorkerListeners(spec.where, spec.options, self.workers,
                                                 lambda w, m: self._worker_hook(route, w, m))
                if not paused:
                    route.listener.resume()
            else:
                route.listener = Listener(self.base, spec.where,
                                          lambda sock, addr: self._on_accept(route, sock, addr),
                                          options=spec.options, paused=paused, share=self._share)
        except Exception as exc:
            raise _named(exc, spec.name)
        return route

    def _register(self, route: _Route) -> None:
        self._routes[route.spec.name] = route
        self.listeners[route.spec.name] = route.listener
        self.specs[route.spec.name] = route.spec
        _log.info("listener_started", listener=route.spec.name, addresses=route.listener.addresses,
                  accept="workers" if isinstance(route.listener, WorkerListeners) else "supervisor")

    def remove_listener(self, name: str) -> None:
        """Stop accepting on `name`; its open connections are left alone."""
        listener = self.listeners.pop(name)
        self._routes.pop(name, None)
        if listener.close() is False:   # a WorkerListeners whose worker did not answer in time
            self._unconfirmed.append(listener)
        self._closed_pauses += listener.counters()["accept_pauses"]
        self.specs.pop(name, None)
        _log.info("listener_closed", listener=name)

    def replace_listeners(self, specs: list[ListenerSpec]) -> list[Listener]:
        """Make ``specs`` the listeners, as one transaction (a reload).

        A spec whose ``where`` is a running listener's (as given, or its bound address) keeps
        that listener's sockets (its backlog and max_connections change in place; a
        reuse_port change is refused). Every other spec is bound first, paused; if any bind fails, what was bound is closed, the
        error (``.listener`` names the spec) is raised and nothing running has changed. Only
        then are the new listeners started and the ones left over closed; they are returned
        (their connections are the caller's to drain).
        """
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate listener names in {names}")
        plan: list[tuple[ListenerSpec, _Route, bool]] = []  # (spec, route, bound now)
        free = {id(r): r for r in self._routes.values()}
        try:
            for spec in specs:
                old = next((r for r in free.values() if _same_place(r, spec.where)), None)
                if old is not None:
                    del free[id(old)]
                    if old.spec.options.reuse_port != spec.options.reuse_port:
                        raise _named(ValueError("reuse_port cannot change on a bound listener; "
                                                "move it to a new address or restart"), spec.name)
                    plan.append((spec, old, False))
                else:
                    plan.append((spec, self._bind(spec, paused=True), True))
        except BaseException:
            for _, route, fresh in plan:
                if fresh:
                    route.listener.close()
            raise
        leftovers = list(free.values())
        self._commit(plan, leftovers)
        return [route.listener for route in leftovers]

    def _commit(self, plan: list, leftovers: list[_Route]) -> None:
        """The swap: cannot fail half-way (only in-memory changes and listen(2) calls)."""
        for route in leftovers:
            self.remove_listener(route.spec.name)
        for _, route, fresh in plan:
            if not fresh:
                self._forget(route.spec.name)
        for spec, route, fresh in plan:
            if fresh:
                self._register(route)
                route.listener.resume()
            else:
                # The spec first: a per-worker listener's limit takes effect at once in the
                # worker threads, and what they accept from then on must get the new spec.
                route.spec = spec
                route.listener.set_options(spec.options)
                self._routes[spec.name] = route
                self.listeners[spec.name] = route.listener
                self.specs[spec.name] = spec

    def _forget(self, name: str) -> None:
        """Forget ``name``'s table entries, keeping its Listener open (it is being renamed)."""
        self._routes.pop(name, None)
        self.listeners.pop(name, None)
        self.specs.pop(name, None)

    def close_listeners(self) -> None:
        self.accepting = False
        if self._share is not None:
            self._share.leave()   # the siblings stop waiting for this process to take its share
        for name in list(self.listeners):
            self.remove_listener(name)

    def sweep_listeners(self) -> None:
        """Every worker's loop has ended: close any member socket a worker never got to."""
        for group in self._unconfirmed + [lst for lst in self.listeners.values()
                                          if isinstance(lst, WorkerListeners)]:
            group.close_now()
        self._unconfirmed.clear()

    # -- accept and hand off -------------------------------------------------------------------

    def _on_accept(self, route: _Route, sock: socket.socket, addr: Any) -> None:
        self.accepts += 1
        spec, listener = route.spec, route.listener  # a reload may have replaced the spec
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

    def _worker_hook(self, route: _Route, worker: Worker, member: Any) -> Callable:
        """The accept hook of ``worker``'s member of a WorkerListeners: runs in that worker's
        thread and serves the socket there (the route's spec: a reload may replace it)."""
        def on_accept(sock: socket.socket, addr: Any) -> None:
            worker.accepted(sock, _Handoff(route.spec, route.listener, member.listener))
        return on_accept

    def _conn_closed(self, worker: Worker, handoff: Any) -> None:
        """A worker thread: one connection ended."""
        if handoff is not None:
            releaser = handoff.member or handoff.listener
            if releaser is not None:
                releaser.release()
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
        for listener in list(self.listeners.values()):
            if isinstance(listener, WorkerListeners):
                listener.replace_worker(dead.index, fresh)
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
    listener: Listener | WorkerListeners | None   # what a reload retiring it drains by
    member: Listener | None = None   # accept="workers": the worker's Listener to release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.spec, name)
