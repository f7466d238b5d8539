"""Server: the embedding facade over a Supervisor and its Workers.

    server = Server(MyProtocol, host="127.0.0.1", port=8000, workers=4)
    server.start()            # threads running, returns at once
    ...
    server.stop(grace=5.0)    # stop accepting, let connections finish, close the rest, join

serve_forever() runs the supervisor loop in the calling thread; in the main thread it also
turns SIGINT/SIGTERM into a graceful stop (a second signal stops at once). After stop()
returns nothing is left: no thread, fd, connection or event.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import weakref
from typing import Any, Callable, Iterable

import structlog

from ..base import Event, EventBase, EventConfig
from .._checks import MAX_SECONDS, check_int, check_seconds
from ..base.flags import EVLOOP_NO_EXIT_ON_EMPTY
from ..errors import ReactorError
from ..io.balance import AcceptShare
from ..io.connection import call_drain_hook
from ..io.options import ListenerOptions
from .dispatch import check_accept, make_policy
from .sizing import gil_enabled
from .supervisor import ListenerSpec, Supervisor

_log = structlog.get_logger("reactorsvc.workers")


def _spec(name: str, protocol_factory: Callable[[], Any], where: Any,
          options: ListenerOptions | None) -> ListenerSpec:
    if not callable(protocol_factory):
        raise TypeError(f"protocol_factory must be callable, not {type(protocol_factory).__name__}")
    if options is None:
        options = ListenerOptions()
    elif not isinstance(options, ListenerOptions):
        raise TypeError(f"options must be a ListenerOptions, not {type(options).__name__}")
    return ListenerSpec(name, protocol_factory, where, options)


def _check_sockets(sockets: object) -> list[socket.socket]:
    try:
        socks = list(sockets)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"sockets must be an iterable of socket.socket, not {type(sockets).__name__}") from None
    if not socks or not all(isinstance(s, socket.socket) for s in socks):
        raise TypeError("sockets must be a non-empty iterable of socket.socket objects")
    return socks


class Server:
    """Listeners, a supervisor thread and `workers` worker threads, one EventBase each.

    `protocol_factory()` is called in a worker thread for each connection. `workers` defaults to
    os.cpu_count(): that pays on free-threaded CPython with the GIL off, where the workers' loops
    run in parallel. With a GIL they take turns: more than one adds no throughput and costs CPU
    per wake-up and hand-off, so pass `workers=1` there (or `sizing.auto_workers(n)`, what the
    daemon's `workers: auto` uses) unless a slow callback must not stall other connections;
    processes (the daemon's `processes: N`) are the way past one core there. `sockets`: already
    bound sockets (inherited fds, systemd's LISTEN_FDS) to listen on instead of host/port.
    `event_config`: a callable returning the EventConfig of each new base (backend choice).
    `ssl`: a server-side ssl.SSLContext; each connection's TLS handshake then runs in its
    worker's thread before connection_made (failures: stats()'s tls_handshake_failures).
    `accept_share`: this process's AcceptShare when sibling processes accept on the same
    sockets (the children of `processes: N`): the listeners keep about their share of the
    connections (io/balance.py) instead of taking whole bursts.
    `accept`: "supervisor" (the default: the supervisor thread accepts and hands each
    connection to a worker, by `dispatch`) or "workers": every TCP listener is bound once per
    worker with SO_REUSEPORT and each worker accepts and serves on its own loop, the kernel
    spreading the connections (a non-default `dispatch`, or `accept_share`, is a ValueError).
    Unix-socket and `sockets=` listeners cannot be bound once per worker and keep the hand-off
    (stats()["listeners"][name] carries "accept": "workers" for the others). Everything else holds in both modes:
    max_connections is server-wide (one lock-protected count), stop() closes every worker's
    listening socket before the drain, replace_listeners() stays a transaction.
    start(), stop(), stats(), add_listener() and remove_listener() are thread-safe.
    """

    def __init__(self, protocol_factory: Callable[[], Any] | None = None, *, host: str | None = "127.0.0.1",
                 port: int = 0, workers: int | None = os.cpu_count(), dispatch: str = "round_robin",
                 backlog: int = 1024, max_connections: int | None = None,
                 idle_timeout: float | None = None, sockets: Iterable[socket.socket] | None = None,
                 reuse_port: bool = False, event_config: Callable[[], EventConfig | None] | None = None,
                 ssl: Any = None, accept_share: AcceptShare | None = None,
                 accept: str = "supervisor") -> None:
        nworkers = check_int(workers if workers is not None else (os.cpu_count() or 1), "workers", 1)
        make_policy(dispatch)  # ValueError naming the known policies
        self._accept = check_accept(accept, dispatch, accept_share)
        if event_config is not None and not callable(event_config):
            raise TypeError("event_config must be a callable returning an EventConfig")
        self._nworkers = nworkers
        self._dispatch = dispatch
        self._make_config = event_config or (lambda: None)
        if accept_share is not None and not isinstance(accept_share, AcceptShare):
            raise TypeError(f"accept_share must be an AcceptShare or None, not {type(accept_share).__name__}")
        self._share = accept_share
        self._pending: list[ListenerSpec] = []
        self._admin: list[tuple] = []
        self._datagram_specs: list[tuple] = []   # (name, factory, (host, port)) until start()
        self.datagram_endpoints: dict[str, list] = {}   # name -> one transport per worker
        self._sup: Supervisor | None = None
        self._thread: threading.Thread | None = None
        self._state = "new"          # new → running → draining → stopped
        self._state_lock = threading.Lock()
        self._drained = threading.Condition()
        self._stop_now = threading.Event()
        self._loop_done = threading.Event()
        self._stopped = threading.Event()
        self._sup_exit = False
        self._grace = 10.0           # shutdown_grace: for SIGINT/SIGTERM in serve_forever()
        # Seconds a stop keeps accepting while `draining` is already True (a load balancer's
        # health checks see it and move traffic away before the listeners close).
        self.health_delay = 0.0
        # Called once start()/serve_forever() has bound every listener and started the
        # workers, in the starting thread (the daemon tells systemd READY=1 there).
        self.on_started: Callable[[], Any] | None = None
        self._admin_listeners: list = []
        self._admin_protocols: weakref.WeakSet = weakref.WeakSet()  # supervisor thread only
        if sockets is not None:
            sockets = _check_sockets(sockets)
        options = ListenerOptions(backlog=backlog, reuse_port=reuse_port,
                                  max_connections=max_connections, idle_timeout=idle_timeout,
                                  ssl=ssl)
        if protocol_factory is not None:
            where = sockets if sockets is not None else (host, port)
            self.add_listener("default", protocol_factory, where=where, options=options)

    @property
    def shutdown_grace(self) -> float:
        """Seconds a SIGINT/SIGTERM stop waits for connections (0..MAX_SECONDS)."""
        return self._grace

    @shutdown_grace.setter
    def shutdown_grace(self, grace: float) -> None:
        self._grace = check_seconds(grace, "grace", maximum=MAX_SECONDS)

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, name: str, protocol_factory: Callable[[], Any], *, where: Any,
                     options: ListenerOptions | None = None) -> list:
        """Listen on `where` ((host, port), a Unix path, or sockets) as `name`, its accepts and
        connections set by `options` (default: ListenerOptions()).

        Before start() it is recorded and bound by start(); afterwards it binds at once (in
        the supervisor thread) and returns the bound addresses. Bind errors raise OSError
        with a ``listener`` attribute naming `name`.
        """
        spec = _spec(name, protocol_factory, where, options)
        if self._sup is None:
            if any(s.name == name for s in self._pending):
                raise ValueError(f"listener {name!r} already exists")
            self._pending.append(spec)
            return []
        return self._in_supervisor(lambda: self._sup.add_listener(spec).addresses)

    def replace_listeners(self, listeners: Iterable[tuple[str, Callable[[], Any], Any,
                                                          ListenerOptions]]) -> None:
        """Make (name, protocol_factory, where, options) the running listeners, all or nothing.

        New addresses are bound before anything running changes; a listener whose `where` is
        unchanged keeps its sockets (backlog, max_connections, timeouts and watermarks change in
        place, for the next connections). On any error (``listener`` attribute: the name) the
        old listeners keep running untouched. The connections of listeners left out are drained
        (their protocols' drain() hook), as remove_listener() does; none is cut.
        """
        specs = [_spec(*entry) for entry in listeners]

        def replace() -> None:
            for listener in self._sup.replace_listeners(specs):
                self._drain_accepted_by(listener)
        self._in_supervisor(replace)

    def remove_listener(self, name: str) -> None:
        """Stop accepting on `name`; the connections it accepted are drained (their
        protocols' drain() hook) and end as their protocols decide."""
        def remove() -> None:
            listener = self._sup.listeners.get(name)
            self._sup.remove_listener(name)
            self._drain_accepted_by(listener)
        self._in_supervisor(remove)

    def _drain_accepted_by(self, listener: Any) -> None:
        """Supervisor thread: each worker drains the connections `listener` accepted."""
        for w in list(self._sup.workers):
            w.call(w.drain_connections, listener)

    def add_datagram_endpoint(self, name: str, protocol_factory: Callable[[], Any], *,
                              where: tuple) -> None:
        """Serve datagrams on `where` ((host, port)) with `protocol_factory()` (an
        asyncio.DatagramProtocol), bound by start(): one endpoint per worker, sharing the port
        with SO_REUSEPORT (the kernel spreads peers across them), each served in its worker's
        thread. Before start() only; bind errors raise from start()."""
        if not callable(protocol_factory):
            raise TypeError(f"protocol_factory must be callable, not {type(protocol_factory).__name__}")
        if self._sup is not None:
            raise ReactorError("add_datagram_endpoint() after start()")
        if any(n == name for n, _, _ in self._datagram_specs):
            raise ValueError(f"datagram endpoint {name!r} already exists")
        self._datagram_specs.append((name, protocol_factory, where))

    def _open_datagram_endpoints(self, sup: Supervisor) -> None:
        from ..io.datagram import open_datagram_endpoint
        many = len(sup.workers) > 1 and hasattr(socket, "SO_REUSEPORT")
        for name, factory, (host, port) in self._datagram_specs:
            endpoints = self.datagram_endpoints.setdefault(name, [])
            for w in sup.workers if many else sup.workers[:1]:
                endpoints.append(open_datagram_endpoint(w.base, factory, local_addr=(host, port),
                                                        reuse_port=many))
                port = endpoints[0].get_extra_info("sockname")[1]  # port 0: all on the first's

    @property
    def datagram_addresses(self) -> list[tuple]:
        """Bound (host, port) of each datagram endpoint (one per name) after start()."""
        return [eps[0].get_extra_info("sockname")[:2] for eps in self.datagram_endpoints.values()]

    def add_admin(self, host: str, port: int, protocol_factory: Callable[[], Any]) -> None:
        """Serve `protocol_factory` on the supervisor's own loop (the daemon's admin endpoint)."""
        self._admin.append((host, port, protocol_factory))

    def listener_names(self) -> list[str]:
        return list(self._sup.listeners) if self._sup else [s.name for s in self._pending]

    @property
    def addresses(self) -> list[tuple]:
        """Bound (host, port) pairs (paths for Unix sockets) after start(), admin excluded."""
        if self._sup is None:
            return []
        return [a for lst in list(self._sup.listeners.values()) for a in lst.addresses]

    @property
    def admin_addresses(self) -> list[tuple]:
        return [a for lst in self._admin_listeners for a in lst.addresses]

    @property
    def draining(self) -> bool:
        return self._state != "running"

    def _in_supervisor(self, fn: Callable[[], Any]) -> Any:
        """Run fn in the supervisor thread and return its result (or raise its error)."""
        if self._sup is None:
            raise ReactorError("the server is not running")
        if self._loop_done.is_set() or self._sup.base.in_loop_thread():
            return fn()
        done = threading.Event()
        box: list = []

        def call() -> None:
            try:
                box.append((True, fn()))
            except BaseException as exc:
                box.append((False, exc))
            done.set()

        self._sup.base.call_soon_threadsafe(call)
        if not done.wait(10.0):
            raise ReactorError("the supervisor did not answer within 10 s")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind every listener, start the workers and the supervisor thread; returns at once.

        Bind errors raise here (OSError), with nothing left running."""
        self._start(own_thread=True)

    def _start(self, own_thread: bool) -> None:
        with self._state_lock:
            if self._state != "new":
                raise ReactorError(f"start() on a server that is {self._state}")
            sup = Supervisor(self._nworkers, self._dispatch, self._make_config, self._share,
                             self._accept)
            try:
                for spec in self._pending:
                    sup.add_listener(spec)
                self._open_datagram_endpoints(sup)
                from ..io.listener import start_server
                for host, port, factory in self._admin:
                    self._admin_listeners.append(
                        start_server(sup.base, self._admin_factory(factory), host, port))
            except BaseException:
                self._discard(sup)
                raise
            sup.on_close = self._on_conn_closed
            self._sup = sup
            sup.start_workers()
            self._state = "running"
        _log.info("server_started", backend=sup.base.method, workers=self._nworkers, gil=gil_enabled(),
                  dispatch=self._dispatch, accept=self._accept,
                  listeners={n: l.addresses for n, l in sup.listeners.items()})
        if self.on_started is not None:
            self.on_started()
        if own_thread:
            self._thread = threading.Thread(target=self._run_supervisor, name="reactorsvc-supervisor",
                                            daemon=True)
            self._thread.start()

    def _discard(self, sup: Supervisor) -> None:
        for endpoints in self.datagram_endpoints.values():
            for t in endpoints:  # no loop ran yet: close the sockets themselves
                t.get_extra_info("socket").close()
        self.datagram_endpoints.clear()
        for lst in self._admin_listeners:
            lst.close()
        self._admin_listeners.clear()
        for name in list(sup.listeners):
            sup.remove_listener(name)
        sup.sweep_listeners()
        for w in sup.workers:
            w.base.free()
        sup.base.free()

    def _run_supervisor(self, signals: Iterable[tuple[int, Callable]] = (),
                        unblock: set[int] = frozenset()) -> None:
        """The supervisor's loop, until stop() asks it to end (then stop() frees the base)."""
        base = self._sup.base
        events = []
        try:
            for signum, handler in signals:
                ev = Event.signal(base, signum, lambda fd, what, h: h(fd), handler)
                ev.add()
                events.append(ev)
            if unblock:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, unblock)
            while not self._sup_exit:
                base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
        finally:
            for ev in events:
                ev.delete()
            self._loop_done.set()

    def serve_forever(self, extra_signals: dict[int, Callable[[int], Any]] | None = None) -> None:
        """start(), then run the supervisor in this thread until stop() has finished.

        In the main thread SIGINT/SIGTERM stop gracefully (grace: `shutdown_grace`, 10 s by
        default); a second one stops at once. `extra_signals`: {signum: handler(signum)} run in
        this thread too (the daemon's SIGHUP reload).
        """
        signals: list[tuple[int, Callable]] = []
        blocked: set[int] = set()
        if threading.current_thread() is threading.main_thread():
            signals = [(signal.SIGINT, self._on_stop_signal), (signal.SIGTERM, self._on_stop_signal)]
            signals += list((extra_signals or {}).items())
            # A signal between binding and registering the handlers would get its default
            # action (death): hold them until the supervisor's signal events exist. Threads
            # started meanwhile inherit the mask, so signals reach this thread afterwards.
            blocked = {signum for signum, _ in signals}
            signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            self._start(own_thread=False)
        except BaseException:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
            raise
        try:
            self._run_supervisor(signals, unblock=blocked)
        except BaseException:
            self._stop_now.set()
            self.stop(0)
            raise
        self._stopped.wait()

    def _on_stop_signal(self, signum: int) -> None:
        if self._state != "running":
            _log.warning("stop_now", signal=signum)
            self._stop_now.set()
            with self._drained:
                self._drained.notify_all()
            return
        _log.info("stop_requested", signal=signum, grace=self.shutdown_grace)
        self._begin_stop(self.shutdown_grace, background=True)

    # -- stopping ------------------------------------------------------------------------------

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let connections finish for up to `grace` seconds, close the rest
        (connection_lost on each), stop and join the threads, free the bases.

        Thread-safe. From a thread of this server (a protocol callback, say) it cannot wait
        for itself: it starts the stop in the background and returns; wait_stopped() waits.
        """
        grace = check_seconds(grace, "grace", maximum=MAX_SECONDS)
        own = self._is_own_thread()
        self._begin_stop(grace, background=own)
        if not own:
            self._stopped.wait()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until a stop has finished; False on timeout."""
        return self._stopped.wait(timeout)

    def _is_own_thread(self) -> bool:
        sup = self._sup
        if sup is None:
            return False
        me = threading.current_thread()
        return me is self._thread or sup.base.in_loop_thread() or any(
            w.thread is me for w in sup.workers)

    def _begin_stop(self, grace: float, background: bool) -> None:
        with self._state_lock:
            state = self._state
            if state == "new":
                self._state = "stopped"
                self._stopped.set()
                return
            if state != "running":
                return  # already stopping: the caller waits on _stopped
            self._state = "draining"
        if background:
            threading.Thread(target=self._drain_and_stop, args=(grace,), name="reactorsvc-stop",
                             daemon=True).start()
        else:
            self._drain_and_stop(grace)

    def _load(self) -> int:
        return sum(w.load() for w in list(self._sup.workers))

    def _on_conn_closed(self) -> None:
        with self._drained:
            self._drained.notify_all()

    def _wait_drained(self, timeout: float) -> bool:
        with self._drained:
            return self._drained.wait_for(lambda: self._load() == 0 or self._stop_now.is_set(), timeout)

    def _drain_and_stop(self, grace: float) -> None:
        sup = self._sup
        try:
            if self.health_delay > 0:
                _log.info("health_delay", seconds=self.health_delay)
                self._stop_now.wait(self.health_delay)
            self._in_supervisor(sup.close_listeners)
            # Only after the listening sockets are closed: a connection told to close must not
            # be replaced by a new one that the stop then cuts.
            for w in list(sup.workers):
                w.call(w.drain_connections)
            self._in_supervisor(self._drain_admin)
            _log.info("draining", connections=self._load(), grace=grace)
            if not self._wait_drained(grace) or self._load():
                _log.info("closing_connections", connections=self._load())
            for endpoints in self.datagram_endpoints.values():
                for t in endpoints:  # each in its own worker's thread
                    t.base.call_soon_threadsafe(t.close)
            for w in list(sup.workers):
                w.call(w.close_connections)
            self._wait_drained(5.0)
            for w in list(sup.workers):
                w.request_stop()
            for w in list(sup.workers):
                w.join(5.0)
                w.free()
            sup.sweep_listeners()   # a member a worker never got to close (it died meanwhile)
            self._in_supervisor(self._close_admin)
        except Exception:
            _log.error("stop_failed", exc_info=True)
        finally:
            self._sup_exit = True
            sup.base.loopbreak()
            self._loop_done.wait(10.0)
            if self._thread is not None:
                self._thread.join(10.0)
            if not sup.base.is_running():
                sup.base.free()
            with self._state_lock:
                self._state = "stopped"
            # Log first: serve_forever() returns once _stopped is set, and a process that
            # exits then kills this (daemon) thread before its last line is written.
            _log.info("server_stopped")
            self._stopped.set()

    def _drain_admin(self) -> None:
        """Supervisor thread: the admin connections' drain() hooks (the admin listener stays
        open until the end, so /healthz can say "draining")."""
        for protocol in list(self._admin_protocols):
            call_drain_hook(protocol, lambda exc, message: _log.error(
                "protocol_callback_failed", message=message, exc_info=exc))

    def _admin_factory(self, factory: Callable[[], Any]) -> Callable[[], Any]:
        def make() -> Any:  # runs in the supervisor thread, the set's one writer
            protocol = factory()
            self._admin_protocols.add(protocol)
            return protocol
        return make

    def _close_admin(self) -> None:
        for lst in self._admin_listeners:
            lst.close()

    # -- numbers -------------------------------------------------------------------------------

    def stats(self) -> dict:
        """{"workers": [per-worker counters], "supervisor": {accepts, handoffs, rejected, ...},
        "listeners": {name: Listener.counters() (accepts, rejected, accept_pauses, emfile,
        accept_errors, open)}} for the listeners open now.

        The supervisor's accepts and handoffs count what went through its thread (with
        accept="workers": only the Unix-socket and inherited-socket listeners); each worker's
        "accepts" counts the connections it accepted itself. A listener bound once per worker
        (accept="workers") has its members' counters summed, plus "accept": "workers" and
        "accepts_per_worker"; a handed-off listener's entry is as it always was."""
        sup = self._sup
        if sup is None:
            return {"workers": [], "supervisor": {}, "listeners": {}}
        return {"workers": [w.stats() for w in list(sup.workers)], "supervisor": sup.stats(),
                "listeners": sup.listener_stats()}

    def bases(self) -> list[tuple[str, EventBase]]:
        """(name, EventBase) of the supervisor and each worker (for /debug/events)."""
        sup = self._sup
        if sup is None:
            return []
        return [("supervisor", sup.base)] + [(f"worker-{w.index}", w.base) for w in list(sup.workers)]
