"""Listener: listening sockets on one EventBase that accept in bounded batches and hand each
new socket to a hook (libevent's evconnlistener); start_server builds one serving a Protocol.

Data flow: a persistent EV_READ event per listening socket → up to ``accept_batch`` accept()
calls per wake-up → ``on_accept(sock, addr)``. ``start_server``'s hook wraps the socket in a
Connection on the same base; the workers layer passes its own hook that hands the socket to
another thread (which calls ``Connection.start`` on its own base).

Back-pressure, never a spin:
- EMFILE/ENFILE/ENOBUFS/ENOMEM (and unexpected accept errors): stop watching, count it, and
  retry from a timer whose delay doubles from 0.1 s to 1 s (an accept that succeeds resets it).
  A burst is logged once when it starts and once when it ends — when the backlog is drained
  (accept says EAGAIN), not at the first success, since fds usually come back one at a time.
  Pending clients wait in the backlog meanwhile.
- ``max_connections``: at that many open connections accepting pauses until ``release()``
  reports one closed (start_server's connections do it themselves; other hooks must call it).
- ``quota`` (one limit shared with Listeners on other loops, io/quota.py): a slot is taken
  before each accept(2) and given back when accept finds nothing; refused, accepting pauses
  until the quota has room again (the limit is the quota's: ``max_connections`` is not applied
  a second time).
- ``share`` (sockets shared with sibling processes, io/balance.py): while this process holds
  more than its share, accepting is deferred — re-checked every ``_DEFER_STEP`` s, and after
  ``_DEFER_MAX`` s one batch is accepted anyway, so a connection no sibling takes (a sibling
  stuck or backing off) waits a bounded time, never for good.

Thread contract: the accept hook runs in the base's loop thread. ``release()`` is thread-safe;
``pause()``, ``resume()`` and ``close()`` belong to the loop thread (or to any thread while the
loop is not running); ``counters()`` and ``addresses`` may be read from anywhere.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, Callable

import structlog

from ..base import Event, EventBase
from .._checks import check_bool, check_int
from ..base.flags import EV_PERSIST, EV_READ
from ..errors import ReactorError
from .balance import AcceptShare
from .connection import Connection, check_stream_socket
from .options import ListenerOptions
from .quota import ConnectionQuota
from .sockets import bind_tcp, bind_unix, remove_unix_path

__all__ = ["Listener", "start_server"]

_log = structlog.get_logger("reactorsvc.io")
_BACKOFF_MIN, _BACKOFF_MAX = 0.1, 1.0
_DEFER_STEP, _DEFER_MAX = 0.002, 0.05   # seconds: a shared socket's re-check, and its bound
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# accept(2): errors of a connection that died in the queue; the next one may be fine.
_TRANSIENT = {getattr(errno, name) for name in (
    "ECONNABORTED", "EPROTO", "ENOPROTOOPT", "EHOSTDOWN", "ENONET", "EHOSTUNREACH",
    "EOPNOTSUPP", "ENETUNREACH", "ENETDOWN", "EPERM") if hasattr(errno, name)}

AcceptHook = Callable[[socket.socket, Any], Any]


def _open_sockets(where: object, backlog: int, reuse_port: bool) -> tuple[list, list]:
    """(listening sockets, [(path, inode)] of Unix sockets we created) for ``where``."""
    if isinstance(where, socket.socket):
        where = [where]
    if isinstance(where, (list, tuple)) and where and all(isinstance(s, socket.socket) for s in where):
        for sock in where:
            check_stream_socket(sock)
            sock.listen(backlog)
            sock.setblocking(False)
        return list(where), []
    if isinstance(where, tuple) and len(where) == 2:
        return bind_tcp(where[0], where[1], backlog, reuse_port), []
    if isinstance(where, (str, bytes, os.PathLike)):
        sock, created = bind_unix(where, backlog)
        return [sock], [created]
    raise TypeError("where must be a (host, port) tuple, a Unix socket path, a listening socket "
                    f"or a list of them, not {type(where).__name__}")


class Listener:
    """Accept connections on ``where`` and pass each to ``on_accept(sock, addr)``.

    ``where``: a (host, port) tuple (host None/"" for every interface; port 0 picks one), a Unix
    socket path (str or PathLike), or already-bound sockets (the Listener takes them over and
    calls listen(backlog)). TCP sockets get SO_REUSEADDR, and SO_REUSEPORT with reuse_port.
    ``on_accept`` owns the socket it is given; if it raises, the error is logged, the socket
    closed and ``rejected`` counted. With ``paused`` accepting starts at ``resume()``.
    ``options`` (a ListenerOptions) gives backlog, reuse_port and max_connections as one value;
    the three keywords build one when it is not given. ``set_options()`` changes them later.
    ``share``: this process's AcceptShare when sibling processes accept on the same sockets
    (the connections spread evenly; see the module docstring); None alone (accepts batch).
    ``quota``: a ConnectionQuota shared with Listeners on other loops, which then holds the
    connection limit instead of ``max_connections`` (see the module docstring).
    Construction is thread-safe; see the module docstring for the other methods.
    """

    def __init__(self, base: EventBase, where: Any, on_accept: AcceptHook, *, backlog: int = 1024,
                 reuse_port: bool = False, max_connections: int | None = None,
                 accept_batch: int = 64, paused: bool = False,
                 options: ListenerOptions | None = None, share: AcceptShare | None = None,
                 quota: ConnectionQuota | None = None) -> None:
        if not isinstance(base, EventBase):
            raise TypeError(f"base must be an EventBase, not {type(base).__name__}")
        if not callable(on_accept):
            raise TypeError(f"on_accept must be callable, not {type(on_accept).__name__}")
        if options is None:
            options = ListenerOptions(backlog=backlog, reuse_port=reuse_port,
                                      max_connections=max_connections)
        elif not isinstance(options, ListenerOptions):
            raise TypeError(f"options must be a ListenerOptions, not {type(options).__name__}")
        check_int(accept_batch, "accept_batch", 1)
        check_bool(paused, "paused")
        if share is not None and not isinstance(share, AcceptShare):
            raise TypeError(f"share must be an AcceptShare or None, not {type(share).__name__}")
        if quota is not None and not isinstance(quota, ConnectionQuota):
            raise TypeError(f"quota must be a ConnectionQuota or None, not {type(quota).__name__}")
        self.options = options
        self._base = base
        self._on_accept = on_accept
        self._quota = quota
        self._max = None if quota is not None else options.max_connections
        self._batch = accept_batch
        self._backoff_timer = Event.timer(base, self._on_backoff_timer)  # fails on a freed base
        self._share = share
        self._defer_timer = Event.timer(base, self._on_defer_timer)
        self._deferred = 0.0        # seconds deferred in a row; _DEFER_MAX reached: accept anyway
        self._deferring = self._override = False
        self._sockets, self._unix_paths = _open_sockets(where, options.backlog, options.reuse_port)
        try:
            self.addresses: list = [_bound_address(s) for s in self._sockets]
            self._events = [Event(base, s.fileno(), EV_READ | EV_PERSIST, self._on_readable, s)
                            for s in self._sockets]
        except BaseException:
            self._close_sockets()
            raise
        self._backoff = _BACKOFF_MIN
        self._in_burst = False
        self._closed = self._full = self._backing_off = self._watching = False
        self._paused = paused
        self._open = 0
        self._accepts = self._rejected = self._accept_pauses = self._emfile = self._errors = 0
        # start_server with ssl: handshakes that failed or timed out (its loop thread writes;
        # under Server the workers count them instead: stats()["workers"][i]).
        self.tls_handshake_failures = 0
        self._update_interest()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Listener {self.addresses} open={self._open} closed={self._closed}>"

    def counters(self) -> dict:
        """accepts, rejected (the hook raised), accept_pauses (watching stopped for
        max_connections, an error backoff or pause()), emfile (accepts failed for lack of fds
        or memory), accept_errors (other failures), open (accepted, not yet released)."""
        return {"accepts": self._accepts, "rejected": self._rejected,
                "accept_pauses": self._accept_pauses, "emfile": self._emfile,
                "accept_errors": self._errors, "open": self._open}

    # ------------------------------------------------------------------ accepting

    def _update_interest(self) -> None:
        """Watch the listening sockets iff nothing says stop."""
        want = not (self._closed or self._paused or self._full or self._backing_off or self._deferring)
        if want == self._watching:
            return
        self._watching = want
        for ev in self._events:
            ev.add() if want else ev.delete()
        if not want and not self._closed and not self._deferring:
            self._accept_pauses += 1

    def _on_readable(self, fd: int, what: int, lsock: socket.socket) -> None:
        accept = lsock.accept
        quota = self._quota
        override, self._override = self._override, False
        for _ in range(self._batch):
            if self._closed:
                return
            if self._share is not None and not override and self._share.ahead():
                self._defer()
                return
            if quota is not None and not quota.take(self._quota_waiter):
                self._full = True   # _quota_freed (posted by the quota's waiter) clears it
                self._update_interest()
                return
            try:
                sock, addr = accept()
            except (BlockingIOError, InterruptedError):
                if quota is not None:
                    quota.give()
                if self._in_burst:  # caught up with the backlog: the overload is over
                    self._in_burst = False
                    _log.info("accept_resumed", addresses=self.addresses, failures=self._emfile)
                return
            except OSError as exc:
                if quota is not None:
                    quota.give()
                if exc.errno in _TRANSIENT:
                    continue
                self._accept_failed(exc)
                return
            self._hand_off(sock, addr)
            if self._max is not None and self._open >= self._max and not self._full:
                self._full = True
                self._update_interest()
                return

    def _hand_off(self, sock: socket.socket, addr: Any) -> None:
        self._accepts += 1
        self._open += 1
        if self._share is not None:
            self._share.opened()
        self._backoff = _BACKOFF_MIN
        try:
            self._on_accept(sock, addr)
        except Exception:
            _log.error("accept_hook_failed", on_accept=repr(self._on_accept), peer=addr,
                       exc_info=True)
            self._rejected += 1
            self._open -= 1
            if self._share is not None:
                self._share.closed()
            if self._quota is not None:
                self._quota.give()
            sock.close()

    def _defer(self) -> None:
        """Ahead of the siblings: stop watching, look again in _DEFER_STEP."""
        self._deferring = True
        self._update_interest()
        self._defer_timer.add(_DEFER_STEP)

    def _on_defer_timer(self, fd: int, what: int, arg: Any) -> None:
        self._deferred += _DEFER_STEP
        if self._deferred >= _DEFER_MAX:
            self._override = True   # nobody took them for that long: one batch regardless
        elif self._share is not None and self._share.ahead():
            self._defer_timer.add(_DEFER_STEP)
            return
        self._deferred = 0.0
        self._deferring = False
        self._update_interest()

    def _accept_failed(self, exc: OSError) -> None:
        """Out of fds/memory, or an unexpected error: stop watching, retry after a delay."""
        if exc.errno in _EXHAUSTED:
            self._emfile += 1
        else:
            self._errors += 1
        if not self._in_burst:
            self._in_burst = True
            _log.warning("accept_failed_backing_off", error=repr(exc), retry_in=self._backoff,
                         addresses=self.addresses)
        self._backing_off = True
        self._update_interest()
        self._backoff_timer.add(self._backoff)
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    def _on_backoff_timer(self, fd: int, what: int, arg: Any) -> None:
        self._backing_off = False
        self._update_interest()

    def release(self) -> None:
        """One connection accepted here has ended: under max_connections, accept again.

        Thread-safe (the count changes in the loop thread, on its next pass; a quota's slot is
        given back at once, so a Listener whose loop has died still frees its share). Call it
        once per connection handed to ``on_accept`` (start_server does it for you).
        """
        if self._quota is not None:
            self._quota.give()
        try:
            self._base.call_soon_threadsafe(self._released)
        except ReactorError:
            pass  # the base is gone: there is nothing left to resume

    def _released(self) -> None:
        self._open -= 1
        if self._share is not None:
            self._share.closed()
        if self._full and self._max is not None and self._open < self._max:
            self._full = False
            self._update_interest()

    def _quota_waiter(self) -> None:
        """Any thread (the quota's give()): the quota has room; resume in the loop thread."""
        try:
            self._base.call_soon_threadsafe(self._quota_freed)
        except ReactorError:
            pass  # the base is gone: nothing left to resume

    def _quota_freed(self) -> None:
        if self._full and not self._closed:
            self._full = False
            self._update_interest()

    def set_options(self, options: ListenerOptions) -> None:
        """Apply new options to this open Listener (a reload): the backlog at once (listen(2)
        again), max_connections from the next accept. ``reuse_port`` is fixed at bind time:
        a different value is a ValueError naming it. Loop thread (or loop not running)."""
        if not isinstance(options, ListenerOptions):
            raise TypeError(f"options must be a ListenerOptions, not {type(options).__name__}")
        if options.reuse_port != self.options.reuse_port:
            raise ValueError("reuse_port cannot change on a bound listener; bind a new address "
                             "or restart")
        if options.backlog != self.options.backlog:
            for sock in self._sockets:
                sock.listen(options.backlog)
        self.options = options
        if self._quota is not None:
            return  # the limit is the quota's (its owner sets it); a full Listener waits on it
        self._max = options.max_connections
        full = self._max is not None and self._open >= self._max
        if full != self._full:
            self._full = full
            self._update_interest()

    def pause(self) -> None:
        """Stop accepting (the sockets keep listening; clients wait in the backlog)."""
        self._paused = True
        self._update_interest()

    def resume(self) -> None:
        """Accept again after pause() (or a Listener made with paused=True)."""
        self._paused = False
        self._update_interest()

    def close(self) -> None:
        """Stop accepting and close the listening sockets (removing the Unix socket files this
        Listener created). Connections already accepted stay open: close them through their
        transports. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._update_interest()
        self._backoff_timer.delete()
        self._defer_timer.delete()
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        for created in self._unix_paths:
            remove_unix_path(*created)

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def overloaded(self) -> bool:
        """True from an accept failure (EMFILE, ...) until the backlog is drained again."""
        return self._in_burst


def _bound_address(sock: socket.socket) -> Any:
    """(host, port) for IP sockets (IPv6's flow info and scope dropped); the path for Unix."""
    name = sock.getsockname()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        return name[0], name[1]
    return name


def start_server(base: EventBase, protocol_factory: Callable[[], Any], host: str | None = "127.0.0.1",
                 port: int = 0, *, backlog: int = 1024, reuse_port: bool = False,
                 max_connections: int | None = None, idle_timeout: float | None = None,
                 path: str | os.PathLike | None = None,
                 sock: socket.socket | None = None, ssl: Any = None,
                 ssl_handshake_timeout: float = 60.0,
                 ssl_shutdown_timeout: float = 30.0) -> Listener:
    """Listen on host:port (or the Unix socket ``path``, or the bound ``sock``) and serve every
    connection with ``protocol_factory()`` on ``base``, in its loop thread.

    ``idle_timeout`` (seconds) closes a connection with nothing sent nor received for that long
    (connection_lost(TimeoutError)). ``ssl``: a server-side ssl.SSLContext — each
    connection's handshake runs first (bounded by ``ssl_handshake_timeout``), connection_made
    after it; failed handshakes close without a protocol call and are counted in
    ``listener.tls_handshake_failures``. Returns the Listener (``addresses``,
    ``close()``, ``counters()``); closing it leaves the connections open. Any thread may call this.
    """
    if not callable(protocol_factory):
        raise TypeError(f"protocol_factory must be callable, not {type(protocol_factory).__name__}")
    options = ListenerOptions(backlog=backlog, reuse_port=reuse_port,
                              max_connections=max_connections, idle_timeout=idle_timeout,
                              ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                              ssl_shutdown_timeout=ssl_shutdown_timeout)
    if path is not None and sock is not None:
        raise ValueError("give path or sock, not both")
    if sock is not None and not isinstance(sock, socket.socket):
        raise TypeError(f"sock must be a socket.socket, not {type(sock).__name__}")
    if path is not None and not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    where = sock if sock is not None else path if path is not None else (host, port)
    def on_accept(conn_sock: socket.socket, addr: Any) -> None:
        Connection.start(base, conn_sock, protocol_factory(), options=options, on_close=on_close)

    def on_close(conn: Connection) -> None:
        if conn.handshake_failed:
            listener.tls_handshake_failures += 1
        listener.release()

    # Paused until `listener` is bound, so on_close can never run before it exists.
    listener = Listener(base, where, on_accept, options=options, paused=True)
    listener.resume()
    return listener
