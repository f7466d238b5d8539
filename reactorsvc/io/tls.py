"""TLSLayer: TLS for one Connection on ``ssl.MemoryBIO`` + ``SSLObject`` (the design of
asyncio's sslproto; never a blocking ``wrap_socket``). The Connection composes one when it is
given ``ssl=``; plain connections never touch this module.

How data flows:
- in: the Connection reads ciphertext as usual and hands it to ``feed()`` (in place of the
  protocol's data_received) → the incoming BIO → during the handshake ``do_handshake()``,
  afterwards ``SSLObject.read()`` → the protocol (``data_received``, or a BufferedProtocol's
  own buffer through ``SSLObject.read(n, buffer)``), at most 64 KiB per call.
- out: ``write(plaintext)`` → ``SSLObject.write()`` → the outgoing BIO → ``Connection._send_raw``
  (the plain write path: a direct send, else the Connection's queue and its EV_WRITE flush).
  Plaintext written before the handshake completes (a client's early writes) waits here and
  counts, with the queued ciphertext, in ``get_write_buffer_size()`` and the watermarks.
- states: handshake → open → closing (close_notify sent, flushing) → done. The handshake runs
  in the connection's loop thread (a worker's), bounded by ``handshake_timeout``; when it
  completes the Connection calls ``connection_made``. A failed or timed-out handshake is logged
  once (info), sends what alert OpenSSL produced (best effort) and closes the socket; on the
  server side the protocol hears nothing, a client hears connection_lost(exc) as for any
  failed connect. ``close()`` sends close_notify and closes once it is flushed, within
  ``shutdown_timeout`` (else connection_lost(TimeoutError)); the peer's close_notify (or a bare
  EOF) is the protocol's eof_received, then the transport closes (TLS cannot half-close).

Thread contract: everything here runs in the connection's loop thread, like the Connection.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl as _ssl
from typing import Any

import structlog

from ..base import Event
from .timeouts import check_timeout

__all__ = ["TLSConfigError", "TLSLayer", "check_tls_options", "server_context"]

_log = structlog.get_logger("reactorsvc.io")
_READ_SIZE = 64 * 1024
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_HANDSHAKE, _OPEN, _CLOSING, _DONE = "handshake", "open", "closing", "done"


def check_tls_options(ssl: object, *, server_side: bool, server_hostname: object = None,
                      handshake_timeout: object = 60.0, shutdown_timeout: object = 30.0,
                      ) -> tuple[_ssl.SSLContext | None, str | None, float, float]:
    """(context or None, server_hostname, handshake_timeout, shutdown_timeout), checked.

    Server side ``ssl`` is an SSLContext or None; client side also True (a default context)
    or False. TypeError/ValueError name the argument (a context made for the other side too).
    """
    if not server_side and type(ssl) is bool:
        ssl = _ssl.create_default_context() if ssl else None
    if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
        kinds = "an ssl.SSLContext or None" if server_side else "an ssl.SSLContext, a bool or None"
        raise TypeError(f"ssl must be {kinds}, not {type(ssl).__name__}")
    if ssl is not None:
        wrong = _ssl.PROTOCOL_TLS_CLIENT if server_side else _ssl.PROTOCOL_TLS_SERVER
        if ssl.protocol == wrong:
            side = "server" if server_side else "client"
            raise ValueError(f"ssl must be a {side}-side context, not one made with {wrong.name}")
    if server_hostname is not None:
        if server_side:
            raise ValueError("server_hostname is only meaningful for a client connection")
        if not isinstance(server_hostname, str):
            raise TypeError(f"server_hostname must be a str or None, not {type(server_hostname).__name__}")
        if ssl is None:
            raise ValueError("server_hostname is only meaningful with ssl")
    handshake = check_timeout(handshake_timeout, "ssl_handshake_timeout")
    shutdown = check_timeout(shutdown_timeout, "ssl_shutdown_timeout")
    if handshake is None or shutdown is None:
        raise TypeError("ssl_handshake_timeout and ssl_shutdown_timeout must be numbers of seconds")
    return ssl, server_hostname, handshake, shutdown


class TLSLayer:
    """One connection's TLS state (see the module docstring). Loop thread only.

    ``failed`` is True once the handshake failed or timed out (the owners count it).
    """

    __slots__ = ("_conn", "_context", "_sslobj", "_incoming", "_outgoing", "_early",
                 "_early_size", "_handshake_timeout", "_shutdown_timeout", "_timer", "state",
                 "failed")

    def __init__(self, conn: Any, context: _ssl.SSLContext, *, server_side: bool,
                 server_hostname: str | None, handshake_timeout: float,
                 shutdown_timeout: float) -> None:
        self._conn = conn
        self._context = context
        self._incoming = _ssl.MemoryBIO()
        self._outgoing = _ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                        server_hostname=server_hostname or None)
        self._early: list[bytes] = []   # plaintext written before the handshake completed
        self._early_size = 0
        self._handshake_timeout = handshake_timeout
        self._shutdown_timeout = shutdown_timeout
        self._timer: Event | None = None
        self.state = _HANDSHAKE
        self.failed = False

    @property
    def pending(self) -> int:
        """Plaintext bytes waiting for the handshake (they count in the write buffer size)."""
        return self._early_size

    def extra(self) -> dict[str, Any]:
        return {"sslcontext": self._context, "ssl_object": self._sslobj}

    # ------------------------------------------------------------------ handshake

    def begin(self) -> None:
        """The socket is attached: read, arm the handshake timeout, send the first flight."""
        conn = self._conn
        self._timer = Event.timer(conn._base, self._on_timer)
        self._timer.add(self._handshake_timeout)
        try:
            conn._read_ev.add()
        except (OSError, ValueError) as exc:  # connection.WATCH_ERRORS
            self._fail(exc)
            return
        self._handshake()

    def _handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except _ssl.SSLWantReadError:
            self._flush()
            return
        except (OSError, ValueError) as exc:  # SSLError is an OSError
            self._fail(exc)
            return
        self.state = _OPEN
        self._timer.delete()
        sslobj, extra = self._sslobj, self._conn._extra
        extra.update(peercert=sslobj.getpeercert(), cipher=sslobj.cipher(),
                     compression=sslobj.compression())
        self._flush()  # the last flight (and TLS 1.3 session tickets)
        early, self._early, self._early_size = self._early, [], 0
        for data in early:  # in the order written, before anything connection_made writes
            self._encrypt(data)
        conn = self._conn
        conn._begin_protocol()
        if self.state == _OPEN and not conn._paused and not conn._closing:
            self.read_plaintext()  # application data that came with the client's Finished

    def _fail(self, exc: BaseException) -> None:
        """The handshake failed or timed out: log once, best-effort alert, close."""
        self.failed = True
        self.state = _DONE
        if self._timer is not None:
            self._timer.delete()
        conn = self._conn
        alert = self._outgoing.read()
        if alert and conn._sock is not None:
            try:
                conn._sock.send(alert, _SEND_FLAGS)
            except OSError:
                pass  # the peer is gone or not reading: the alert was a courtesy
        _log.info("tls_handshake_failed", peer=conn._extra.get("peername"), error=repr(exc))
        conn._force_close(exc)

    def _on_timer(self, fd: int, what: int, arg: Any) -> None:
        if self.state == _HANDSHAKE:
            self._fail(TimeoutError(errno.ETIMEDOUT, "TLS handshake timed out after "
                                    f"{self._handshake_timeout:g} s"))
        elif self.state == _CLOSING:
            self.state = _DONE
            self._conn._fatal_error(TimeoutError(errno.ETIMEDOUT, "TLS shutdown timed out after "
                                                 f"{self._shutdown_timeout:g} s"), "TLS shutdown")

    # ------------------------------------------------------------------ reading

    def feed(self, data: bytes) -> None:
        """Ciphertext from the socket (the Connection's data_received while TLS is on)."""
        self._incoming.write(data)
        if self.state == _HANDSHAKE:
            self._handshake()
        elif self.state == _OPEN:
            self.read_plaintext()

    def read_plaintext(self) -> None:
        """Decrypt and deliver while the protocol reads (also after resume_reading())."""
        conn = self._conn
        calls, sslobj = conn._calls, self._sslobj
        while self.state == _OPEN and not conn._paused and not conn._closing:
            buf = None
            if calls.buffered:
                buf = conn._protocol_buffer()
                if buf is None:
                    return
            try:
                data = sslobj.read(_READ_SIZE) if buf is None else sslobj.read(len(buf), buf)
            except _ssl.SSLWantReadError:
                break
            except _ssl.SSLZeroReturnError:
                data = b""
            except (OSError, ValueError) as exc:
                conn._fatal_error(exc, "TLS read failed")
                return
            if not data:
                self._peer_closed()
                return
            try:
                if buf is None:
                    calls.data_received(data)
                else:
                    calls.buffer_updated(data)
            except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
                conn._protocol_error(exc, "protocol data callback failed")
                return
        self._flush()  # TLS 1.3 post-handshake messages (key updates) may want an answer

    def on_raw_eof(self) -> None:
        """The socket reached EOF (the Connection has stopped reading)."""
        if self.state == _HANDSHAKE:
            self._fail(ConnectionResetError(errno.ECONNRESET,
                                            "connection closed during the TLS handshake"))
        elif self.state == _OPEN:
            self._peer_closed()  # EOF without close_notify: the same end for the protocol

    def _peer_closed(self) -> None:
        conn = self._conn
        conn._read_eof = True
        conn._read_ev.delete()
        try:
            conn._calls.eof_received()  # keeping a TLS connection half-open is impossible
        except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
            conn._protocol_error(exc, "protocol.eof_received() failed")
            return
        conn.close()

    # ------------------------------------------------------------------ writing and closing

    def write(self, data: bytes) -> None:
        """Plaintext from the protocol: encrypted now, or kept until the handshake is done."""
        if self.state == _HANDSHAKE:
            self._early.append(data)
            self._early_size += len(data)
            self._conn._maybe_pause_protocol()
        elif self.state == _OPEN:
            self._encrypt(data)

    def _encrypt(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while len(view):  # a memory BIO takes everything; the loop is for record sizes
                view = view[self._sslobj.write(view):]
        except (OSError, ValueError) as exc:
            self._conn._fatal_error(exc, "TLS write failed")
            return
        self._flush()

    def _flush(self) -> None:
        if self._outgoing.pending:
            self._conn._send_raw(self._outgoing.read())

    def shutdown(self) -> bool:
        """close(): queue close_notify; False if there is no session to close (the handshake
        had not completed: the caller closes at once). Arms the shutdown timeout."""
        if self.state != _OPEN:
            return False
        self.state = _CLOSING
        try:
            self._sslobj.unwrap()
        except _ssl.SSLWantReadError:
            pass  # close_notify is written; we do not wait for the peer's
        except (OSError, ValueError):
            pass  # a broken session: closing is all that is left to do
        self._flush()
        self._timer.add(self._shutdown_timeout)
        return True

    def release(self) -> None:
        """connection_lost has run: drop the timer and the session."""
        self.state = _DONE
        if self._timer is not None:
            self._timer.delete()
            self._timer = None
        self._early = []
        self._early_size = 0
        self._conn = None


class TLSConfigError(ValueError):
    """A server certificate setting that cannot be used; ``option`` names it ("cert", "key",
    "client_ca" or "min_version") so a config loader can point at the right key."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


_MIN_VERSIONS = {"1.2": _ssl.TLSVersion.TLSv1_2, "1.3": _ssl.TLSVersion.TLSv1_3}


def _ssl_reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)


def server_context(cert: str | os.PathLike, key: str | os.PathLike,
                   client_ca: str | os.PathLike | None = None,
                   min_version: str = "1.2") -> _ssl.SSLContext:
    """A server-side SSLContext from PEM files: the certificate chain ``cert`` and its private
    ``key``; with ``client_ca``, clients must present a certificate signed by it (mutual TLS).
    TLSConfigError names the option at fault: an unreadable file, a file that is not PEM, a
    key that does not match the certificate, a min_version other than "1.2" or "1.3".
    Reads the files each call (a reload re-reads rotated certificates). Thread-safe.
    """
    if min_version not in _MIN_VERSIONS:
        raise TLSConfigError("min_version", f"must be one of {', '.join(_MIN_VERSIONS)}, "
                             f"got {min_version!r}")
    for option, path in (("cert", cert), ("key", key), ("client_ca", client_ca)):
        if path is None:
            continue
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as exc:
            raise TLSConfigError(option, f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
        if b"-----BEGIN " not in text:
            raise TLSConfigError(option, f"{os.fspath(path)!r} is not a PEM file")
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_VERSIONS[min_version]
    try:  # the certificates alone first, so a bad one is not blamed on the key
        _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=os.fspath(cert))
    except (_ssl.SSLError, ValueError) as exc:
        raise TLSConfigError("cert", f"{os.fspath(cert)!r} holds no valid certificate: "
                             f"{_ssl_reason(exc)}") from None
    try:
        ctx.load_cert_chain(cert, key)
    except _ssl.SSLError as exc:
        reason = _ssl_reason(exc)
        what = ("does not match the certificate" if "MISMATCH" in str(reason).upper()
                else "is not a valid private key")
        raise TLSConfigError("key", f"{os.fspath(key)!r} {what}: {reason}") from None
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=os.fspath(client_ca))
        except (_ssl.SSLError, ValueError) as exc:
            raise TLSConfigError("client_ca", f"{os.fspath(client_ca)!r} holds no valid "
                                 f"certificate: {_ssl_reason(exc)}") from None
        ctx.verify_mode = _ssl.CERT_REQUIRED
    return ctx
