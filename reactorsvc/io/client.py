"""connect(): a non-blocking client connection that becomes a Connection (Transport).

Flow: resolve (getaddrinfo: blocking for host names, immediate for numeric addresses) → for
each address in turn, a non-blocking connect() and a one-shot EV_WRITE event bounded by what
is left of ``timeout`` → SO_ERROR says whether it worked → the Connection takes the socket
and calls connection_made. Refused on every address, or out of time: connection_lost(exc)
with the last error (ConnectionRefusedError, TimeoutError, ...), without connection_made.
"""

from __future__ import annotations

import errno
import os
import socket
from time import monotonic
from typing import Any, Callable

from ..base import Event, EventBase
from ..base.flags import EV_TIMEOUT, EV_WRITE
from .connection import WATCH_ERRORS, Connection
from .sockets import check_host_port, check_unix_path, resolve
from .timeouts import check_timeout

__all__ = ["connect"]

_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY}


def connect(base: EventBase, protocol_factory: Callable[[], Any], host: str | None = None,
            port: int | None = None, *, timeout: float | None = None,
            path: str | os.PathLike | None = None, worker: Any = None,
            idle_timeout: float | None = None, read_timeout: float | None = None,
            write_timeout: float | None = None, ssl: Any = None,
            server_hostname: str | None = None, ssl_handshake_timeout: float = 60.0,
            ssl_shutdown_timeout: float = 30.0) -> Connection:
    """Connect to host:port (or the Unix socket ``path``) and drive ``protocol_factory()``.

    Returns the Connection at once; the same object is later passed to connection_made (in
    base's loop thread). Data written before that is queued and sent once connected; close()
    or abort() before that abandons the attempt (connection_lost(None)). ``timeout`` bounds
    the whole connect; the other timeouts apply to the connection (see Connection).
    ``ssl``: a client ssl.SSLContext, or True for ``ssl.create_default_context()``; the TLS
    handshake (``server_hostname`` defaults to ``host``) then comes before connection_made, and
    a failed or timed-out handshake ends in connection_lost(exc) like a failed connect. Callable
    from any thread; name resolution errors (socket.gaierror) and bad arguments raise here.
    """
    if not isinstance(base, EventBase):
        raise TypeError(f"base must be an EventBase, not {type(base).__name__}")
    if not callable(protocol_factory):
        raise TypeError(f"protocol_factory must be callable, not {type(protocol_factory).__name__}")
    timeout = check_timeout(timeout, "timeout")
    if path is not None:
        if host is not None or port is not None:
            raise ValueError("give host and port, or path, not both")
        path = check_unix_path(path)
        infos = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", path)]
        label = repr(path)
    else:
        if host is None or port is None:
            raise ValueError("connect() needs host and port (or path)")
        check_host_port(host, port, passive=False)
        infos = resolve(host, port, passive=False)
        label = f"{host} port {port}"
        if server_hostname is None and ssl not in (None, False):
            server_hostname = host
    conn = Connection(base, protocol_factory(), worker=worker, idle_timeout=idle_timeout,
                      read_timeout=read_timeout, write_timeout=write_timeout, ssl=ssl,
                      server_side=False, server_hostname=server_hostname,
                      ssl_handshake_timeout=ssl_handshake_timeout,
                      ssl_shutdown_timeout=ssl_shutdown_timeout)
    conn._owned = True  # the caller holds the transport: it hears connection_lost, whatever happens
    connector = _Connector(base, conn, infos, timeout, label)
    conn._connector = connector
    connector.try_next()
    return conn


class _Connector:
    """One connect() in progress: tries the addresses in order within one deadline."""

    __slots__ = ("_base", "_conn", "_infos", "_timeout", "_deadline", "_label", "_sock",
                 "_event", "_last_exc")

    def __init__(self, base: EventBase, conn: Connection, infos: list, timeout: float | None,
                 label: str) -> None:
        self._base = base
        self._conn = conn
        self._infos = list(infos)
        self._timeout = timeout
        self._deadline = None if timeout is None else monotonic() + timeout
        self._label = label
        self._sock: socket.socket | None = None
        self._event: Event | None = None
        self._last_exc: Exception | None = None

    def try_next(self) -> None:
        """Start connecting to the next address; when none is left, fail with the last error."""
        while self._infos:
            family, type_, proto, _, addr = self._infos.pop(0)
            left = None if self._deadline is None else self._deadline - monotonic()
            if left is not None and left <= 0:
                break
            try:
                sock = socket.socket(family, type_, proto)
            except OSError as exc:
                self._last_exc = exc
                continue
            try:
                sock.setblocking(False)
                err = sock.connect_ex(addr)
                if err and err not in _IN_PROGRESS:
                    raise OSError(err, f"connect to {self._label}: {os.strerror(err)}")
                # Even a connect that completed at once (Unix sockets) reports through the
                # event, so connection_made never runs before connect() has returned.
                self._event = Event(self._base, sock.fileno(), EV_WRITE, self._on_writable, sock)
                self._event.add(left)
            except WATCH_ERRORS as exc:
                sock.close()
                self._last_exc = exc
                continue
            self._sock = sock
            return
        self._base.call_soon_threadsafe(self._fail, self._final_error())

    def _final_error(self) -> Exception:
        if self._deadline is not None and monotonic() >= self._deadline:
            return TimeoutError(errno.ETIMEDOUT,
                                f"connect to {self._label} timed out after {self._timeout:g} s")
        if self._last_exc is not None:
            return self._last_exc
        return OSError(errno.EADDRNOTAVAIL, f"connect to {self._label}: no usable address")

    def _on_writable(self, fd: int, what: int, sock: socket.socket) -> None:
        self._event = None
        if self._conn is None:
            return
        if not what & EV_WRITE and what & EV_TIMEOUT:
            self._drop_socket()
            self._fail(TimeoutError(errno.ETIMEDOUT, f"connect to {self._label} timed out "
                                    f"after {self._timeout:g} s"))
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._drop_socket()
            self._last_exc = OSError(err, f"connect to {self._label}: {os.strerror(err)}")
            self.try_next()
            return
        conn, self._conn = self._conn, None
        self._sock = None
        conn._connector = None
        try:
            conn._attach(sock)
        except OSError as exc:
            sock.close()
            conn._fatal_error(exc, "connect failed")
            return
        conn._begin()

    def _fail(self, exc: Exception) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn._connector = None
            conn._fatal_error(exc, "connect failed")

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def cancel(self) -> None:
        """The transport was closed or aborted while connecting: stop, close the socket."""
        self._conn = None
        if self._event is not None:
            self._event.delete()
            self._event = None
        self._drop_socket()
