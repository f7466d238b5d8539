"""Connection: one stream socket on one EventBase driving a Protocol — an asyncio-style Transport
(libevent's bufferevent).

How data flows:
- reading (reading.py): a persistent EV_READ event; each wake-up does one ``recv_into`` into the thread's
  reused 64 KiB scratch area (shared with Buffer.read_from) and hands a ``bytes`` copy of what
  arrived to ``protocol.data_received`` (a BufferedProtocol: ``recv_into`` its own buffer, then
  ``buffer_updated``). No per-read allocation beyond that copy.
- writing (writing.py): ``write()`` calls ``send()`` at once while nothing is queued; what the
  kernel does not take goes to a Buffer, and a persistent EV_WRITE event — added only while data
  is queued — flushes it with ``sendmsg`` (scatter-gather). Flow control as asyncio's selector
  transports: ``pause_writing()`` from inside the write() that takes the buffer over the high
  watermark (default 64 KiB), ``resume_writing()`` once a flush brings it down to the low one.
- timers (timeouts.py): read/write/idle timeouts share one lazily re-armed timer; call_later.
- TLS (tls.py): with ``ssl=`` a TLSLayer sits between the socket and the protocol (MemoryBIO);
  the handshake runs first, connection_made after it.
- the end: ECONNRESET, EPIPE, ETIMEDOUT, our timeouts and protocol callbacks that raise all go
  through ``_fatal_error`` → ``_force_close``; ``close()`` (after the flush) and ``abort()`` join
  the same path, which schedules ``connection_lost(exc)`` exactly once, from the loop, after
  which the socket is closed. No exception escapes into the loop.

Thread contract: a Connection belongs to its base's loop thread. Protocol callbacks all run
there, ``connection_made`` first and ``connection_lost`` last; Transport methods must be called
there too (other threads: ``base.call_soon_threadsafe(transport.write, data)``). Only
``Connection.start`` may be called from another thread. Nothing here blocks.
"""

from __future__ import annotations

import socket
from time import monotonic
from typing import Any, Callable

import structlog

from ..base import Event, EventBase
from ..base.flags import EV_PERSIST, EV_READ, EV_WRITE
from . import buffer as _buffer
from .buffer import SCRATCH_SIZE, Buffer
from .options import ListenerOptions
from .protocol import ProtocolCalls
from .reading import ReadingMixin
from .tls import TLSLayer, check_tls_options
from .timeouts import TimeoutsMixin
from .writing import DEFAULT_HIGH

__all__ = ["Connection"]

_log = structlog.get_logger("reactorsvc.io")
_INET = (socket.AF_INET, socket.AF_INET6)
# What Event.add() raises for a socket the backend cannot watch: the kernel's OSError, or
# ValueError from select for an fd >= FD_SETSIZE. Either ends the connection, not the loop.
WATCH_ERRORS = (OSError, ValueError)


def thread_scratch() -> memoryview:
    """This thread's read area: Buffer's per-thread scratch, so a thread holds one 64 KiB area."""
    tls = _buffer._tls
    try:
        return tls.view
    except AttributeError:
        tls.view = memoryview(bytearray(SCRATCH_SIZE))
        return tls.view


def _address(getter: Callable[[], Any]) -> Any:
    try:
        return getter()
    except OSError:  # already reset by the peer, or not connected
        return None


def call_drain_hook(protocol: Any, on_error: Callable[[Exception, str], Any]) -> None:
    """Call ``protocol.drain()`` if it has one: reactorsvc's own optional Protocol method
    (asyncio has no such name), called once, in the connection's thread, when the server
    begins to drain (stop, or a reload retiring the connection's listener). An error goes
    to ``on_error(exc, message)``."""
    hook = getattr(protocol, "drain", None)
    if hook is None:
        return
    try:
        hook()
    except Exception as exc:
        on_error(exc, "protocol.drain() failed")


def check_protocol(protocol: object) -> None:
    """TypeError naming a required Protocol method that ``protocol`` (an object or a class)
    lacks, or an optional one that is not callable: ProtocolCalls' (asyncio's) rules."""
    ProtocolCalls(protocol)


def check_stream_socket(sock: object) -> socket.socket:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"sock must be a socket.socket, not {type(sock).__name__}")
    if sock.fileno() < 0:
        raise ValueError("sock is closed")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"sock must be a SOCK_STREAM socket, not {sock.type!r}")
    return sock


class Connection(ReadingMixin, TimeoutsMixin):
    """An asyncio-compatible Transport over one stream socket (see the module docstring).

    Make one with ``Connection.start`` (an accepted or connected socket) or ``connect()``.
    Counters: ``bytes_in``, ``bytes_out``. Every method belongs to the base's loop thread and
    never blocks; only ``start`` may be called from any thread.
    """

    __slots__ = ()  # ConnectionState holds them (state.py)

    def __init__(self, base: EventBase, protocol: Any, *, worker: Any = None,
                 idle_timeout: float | None = None, read_timeout: float | None = None,
                 write_timeout: float | None = None,
                 on_close: Callable[[Connection], Any] | None = None, ssl: Any = None,
                 server_side: bool = True, server_hostname: str | None = None,
                 ssl_handshake_timeout: float = 60.0, ssl_shutdown_timeout: float = 30.0) -> None:
        """A Connection without a socket yet; use ``start()`` or ``connect()`` instead."""
        if not isinstance(base, EventBase):
            raise TypeError(f"base must be an EventBase, not {type(base).__name__}")
        calls = ProtocolCalls(protocol)
        if on_close is not None and not callable(on_close):
            raise TypeError(f"on_close must be callable or None, not {type(on_close).__name__}")
        self._base = base
        self._sock: socket.socket | None = None
        self._protocol = protocol
        self._calls = calls
        self._data_received = calls.data_received
        self._wbuf = Buffer()
        self._read_ev: Event | None = None
        self._write_ev: Event | None = None
        self._direct = False          # write() may send() at once: connected, nothing queued
        self._owned = False           # the protocol must hear connection_lost
        self._started = False         # connection_made was called
        self._paused = self._read_eof = self._eof = self._closing = False
        self._lost = False            # connection_lost is scheduled (or ran)
        self._sock_closed = False
        self._protocol_paused = False
        self._high, self._low = DEFAULT_HIGH, DEFAULT_HIGH // 4
        self._worker = worker
        self._extra: dict[str, Any] = {}
        self._on_close = on_close
        self._connector: Any = None
        self.bytes_in = self.bytes_out = 0
        self._init_timeouts(idle_timeout, read_timeout, write_timeout)
        context, hostname, handshake, shutdown = check_tls_options(
            ssl, server_side=server_side, server_hostname=server_hostname,
            handshake_timeout=ssl_handshake_timeout, shutdown_timeout=ssl_shutdown_timeout)
        self._tls: TLSLayer | None = None
        if context is not None:
            self._tls = TLSLayer(self, context, server_side=server_side,
                                 server_hostname=hostname, handshake_timeout=handshake,
                                 shutdown_timeout=shutdown)
            self._data_received = self._tls.feed  # the socket's bytes are ciphertext
            self._extra.update(self._tls.extra())

    @classmethod
    def start(cls, base: EventBase, sock: socket.socket, protocol: Any, *, worker: Any = None,
              idle_timeout: float | None = None, read_timeout: float | None = None,
              write_timeout: float | None = None,
              on_close: Callable[[Connection], Any] | None = None,
              options: ListenerOptions | None = None) -> Connection:
        """Serve an accepted (or connected) stream socket with ``protocol`` on ``base``.

        The Connection owns ``sock`` from now on. ``protocol.connection_made`` runs in base's
        loop thread on its next pass, then reading starts. ``worker`` is what
        ``get_extra_info("worker")`` returns; ``on_close(connection)`` runs after
        ``connection_lost``. Timeouts are in seconds (None: none). ``ssl``: a server-side
        SSLContext — the handshake runs first (tls.py), connection_made after it. Thread-safe (the workers
        layer calls it for another thread's base); on error nothing is registered and the
        socket stays the caller's. ``options`` (a listener's ListenerOptions) gives the
        timeouts and write-buffer watermarks instead of the three timeout arguments.
        """
        check_stream_socket(sock)
        if options is None:
            conn = cls(base, protocol, worker=worker, idle_timeout=idle_timeout,
                       read_timeout=read_timeout, write_timeout=write_timeout, on_close=on_close)
        else:
            conn = cls(base, protocol, worker=worker, on_close=on_close, **options.timeouts,
                       **options.tls)
            conn._high, conn._low = options.write_buffer_high, options.write_buffer_low
        conn._attach(sock)
        base.call_soon_threadsafe(conn._begin)
        return conn

    def _attach(self, sock: socket.socket) -> None:
        """Take a connected socket: events, extras, and the direct write path."""
        sock.setblocking(False)
        if sock.family in _INET:
            try:  # as asyncio: small writes go out at once (echo and RPC latency)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        fd = sock.fileno()
        self._read_ev = Event(self._base, fd, EV_READ | EV_PERSIST, self._reader())
        self._write_ev = Event(self._base, fd, EV_WRITE | EV_PERSIST, self._on_writable)
        self._sock = sock
        self._recv_into = sock.recv_into
        self._send = sock.send
        self._extra.update(socket=sock, sockname=_address(sock.getsockname),
                           peername=_address(sock.getpeername))
        if len(self._wbuf):  # written to while connect() was in progress
            self._last_read = self._last_write = self._write_progress = monotonic()
            self._add_writer()
        elif self._eof:
            self._shutdown_write()
        else:
            self._direct = self._tls is None  # TLS writes go through the TLS layer

    def _begin(self) -> None:
        """In the loop thread: the TLS handshake if any, connection_made, reading, timeouts."""
        if self._lost:
            return  # aborted before it began
        self._scratch = thread_scratch()
        if self._tls is not None:
            self._tls.begin()  # calls _begin_protocol once the handshake is done
        else:
            self._begin_protocol()

    def _begin_protocol(self) -> None:
        self._owned = self._started = True
        try:
            self._calls.connection_made(self)
        except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
            self._protocol_error(exc, "protocol.connection_made() failed")
            return
        if self._closing or self._paused:
            self._read_ev.delete()  # TLS: reading ran for the handshake
        else:
            try:
                self._read_ev.add()
            except WATCH_ERRORS as exc:
                self._fatal_error(exc, "cannot watch the socket")
                return
        self._start_timeouts()

    # ------------------------------------------------------------------ closing

    def is_closing(self) -> bool:
        """True once close() or abort() was called or the connection failed."""
        return self._closing

    def drain(self) -> None:
        """Loop thread: the server is draining; tell the protocol (its optional ``drain()``).

        Input already waiting in the kernel is read first (one recv), so a request that has
        arrived counts as in flight, not idle. No-op before connection_made and after the
        end; a hook that raises ends the connection like any protocol callback."""
        if self._lost or not self._started:
            return
        if self._reading_enabled():
            self._reader()(-1, 0, None)  # into our scratch area, or the protocol's buffer
            if self._lost:
                return
        call_drain_hook(self._protocol, self._protocol_error)

    def close(self) -> None:
        """Stop reading, flush what is queued, then close: connection_lost(None) (or the
        error that interrupts the flush). Idempotent. While connect() is still in progress,
        it abandons the attempt (connection_lost(None))."""
        if self._closing:
            return
        if self._sock is None:
            self._force_close(None)
            return
        if self._tls is not None and not self._tls.shutdown():
            self._force_close(None)  # no TLS session yet: nothing to say goodbye to
            return
        self._closing = True
        self._direct = False
        self._read_ev.delete()
        if not len(self._wbuf):
            self._schedule_lost(None)

    def abort(self) -> None:
        """Close at once, dropping queued data: connection_lost(None). Idempotent."""
        self._force_close(None)

    def _protocol_error(self, exc: BaseException, message: str) -> None:
        """A protocol callback raised: report it, then close as asyncio does (connection_lost(exc)).
        Any exception, SystemExit and KeyboardInterrupt included, ends only this connection."""
        self._report_protocol_error(exc, message)
        self._force_close(exc)

    def _report_protocol_error(self, exc: BaseException, message: str) -> None:
        """Through the base's exception handler, with asyncio's context keys."""
        self._base.call_exception_handler({"message": message, "exception": exc, "transport": self,
                                           "protocol": self._protocol,
                                           "peername": self._extra.get("peername")})

    def _fatal_error(self, exc: Exception, message: str) -> None:
        """The one failure path for I/O errors and timeouts: ends in connection_lost(exc)."""
        if isinstance(exc, (ConnectionError, TimeoutError)):
            _log.debug("connection_failed", message=message, error=repr(exc),
                       peer=self._extra.get("peername"))
        else:
            _log.warning("connection_failed", message=message, error=repr(exc),
                         peer=self._extra.get("peername"))
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._wbuf.clear()
        self._closing = True
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: BaseException | None) -> None:
        """Stop all I/O now; connection_lost(exc) runs from the loop (never inside a write())."""
        self._lost = True
        self._direct = False
        if self._read_ev is not None:
            self._read_ev.delete()
            self._write_ev.delete()
        if self._timer is not None:
            self._timer.delete()
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        self._base.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._owned:
                self._calls.connection_lost(exc)
        except BaseException as error:  # SystemExit too: reported, the worker goes on
            self._report_protocol_error(error, "protocol.connection_lost() failed")
        finally:
            if self._tls is not None:
                self._tls.release()
            self._sock_closed = True
            if self._sock is not None:
                self._sock.close()
            self._cancel_timers()
            # Break the connection <-> protocol <-> event cycles at once (as asyncio does).
            self._read_ev = self._write_ev = self._timer = None
            self._protocol = self._calls = self._data_received = self._recv_into = None
            self._send = None
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                try:
                    on_close(self)
                except Exception:
                    _log.error("on_close_failed", on_close=repr(on_close), exc_info=True)

    # ------------------------------------------------------------------ the rest of Transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """"peername", "sockname", "socket" (None while connect() is in progress), "worker"
        (what the creator passed; None for start_server) and "call_later" (call_later);
        over TLS also "sslcontext", "ssl_object", and after the handshake "peercert",
        "cipher", "compression"."""
        if name == "worker":
            return self._worker
        if name == "call_later":
            return self.call_later
        return self._extra.get(name, default)

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        """Switch protocols (asyncio's set_protocol); the new one gets the next callbacks
        (a BufferedProtocol may replace a plain one and the other way round)."""
        calls = ProtocolCalls(protocol)
        if self._lost:
            return
        was_buffered = self._calls.buffered
        self._protocol, self._calls = protocol, calls
        if self._tls is not None:
            return  # the TLS layer reads the new protocol's callbacks on each delivery
        self._data_received = calls.data_received
        old = self._read_ev
        if old is not None and calls.buffered != was_buffered:
            reading = old.pending(EV_READ)
            old.delete()
            self._read_ev = Event(self._base, old.fd, EV_READ | EV_PERSIST, self._reader())
            if reading:
                self._read_ev.add()

    @property
    def handshake_failed(self) -> bool:
        """True when this is a TLS connection whose handshake failed or timed out."""
        return self._tls is not None and self._tls.failed

    def __repr__(self) -> str:
        state = ("lost" if self._lost else "closing" if self._closing
                 else "open" if self._sock is not None else "connecting")
        return (f"<Connection {state} fd={self._sock.fileno() if self._sock else -1} "
                f"peer={self._extra.get('peername')} buffered={len(self._wbuf)}>")
