"""DatagramTransport: one UDP (or Unix datagram) socket on one EventBase driving an
asyncio.DatagramProtocol unchanged; ``open_datagram_endpoint`` makes one (asyncio's
``create_datagram_endpoint``, on our reactor).

How data flows:
- in: a persistent EV_READ event; each wake-up receives up to ``_RECV_BATCH`` datagrams
  (Python has no recvmmsg: a bounded loop of ``recvmsg_into`` into the thread's reused 64 KiB
  area), each handed to ``datagram_received(bytes, addr)``. A datagram larger than the area
  (MSG_TRUNC) is never delivered as if whole: it is dropped, counted in ``truncated`` and
  reported as ``error_received(OSError(EMSGSIZE))``. Receive errors — ICMP port unreachable on
  a connected endpoint is ECONNREFUSED — go to ``error_received`` and the endpoint stays open.
- out: ``sendto()`` sends at once while nothing is queued; a datagram the kernel refuses with
  EAGAIN waits in a FIFO flushed from a persistent EV_WRITE event (added only while the FIFO is
  not empty). Flow control as the stream transports: ``pause_writing()`` from the sendto() that
  takes the queued bytes over the high watermark (64 KiB), ``resume_writing()`` once a flush
  brings them down to the low one. Send errors other than EAGAIN go to ``error_received``.
- the end: ``close()`` stops receiving and finishes once the FIFO is flushed, ``abort()`` drops
  it; either schedules ``connection_lost(None)`` once, from the loop, then closes the socket.
  A protocol callback that raises is logged and ends the endpoint: connection_lost(exc).

Thread contract: ``open_datagram_endpoint`` may be called from any thread; every protocol
callback runs in the base's loop thread (connection_made first, connection_lost last), and the
transport's methods belong to that thread too. Nothing here blocks.
"""

from __future__ import annotations

import collections
import errno
import socket
from typing import Any, Callable

from .._checks import BadArgumentType, BadArgumentValue
from ..base import Event, EventBase
from ..base.flags import EV_PERSIST, EV_READ, EV_WRITE
from .connection import thread_scratch
from .sockets import check_host_port
from .writing import write_limits

__all__ = ["DatagramTransport", "open_datagram_endpoint"]

_RECV_BATCH = 32          # datagrams per readiness event: bounded, so other events get a turn
_MSG_TRUNC = getattr(socket, "MSG_TRUNC", 0x20)


def _nothing(*args: Any) -> None:
    return None


class DatagramTransport:
    """asyncio's DatagramTransport over one datagram socket (see the module docstring).

    Counters (loop thread writes, any thread may read): ``datagrams_in``, ``datagrams_out``,
    ``truncated`` (datagrams dropped for exceeding the 64 KiB receive area).
    """

    def __init__(self, base: EventBase, sock: socket.socket, protocol: Any,
                 remote_addr: Any = None) -> None:
        """Serve the bound (and, with ``remote_addr``, connected) datagram socket ``sock``;
        prefer ``open_datagram_endpoint``. Takes ownership of ``sock``. Thread-safe."""
        if not isinstance(base, EventBase):
            raise TypeError(f"base must be an EventBase, not {type(base).__name__}")
        if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_DGRAM:
            raise TypeError("sock must be a SOCK_DGRAM socket.socket")
        if not callable(getattr(protocol, "datagram_received", None)):
            raise TypeError(f"protocol {type(protocol).__name__} has no callable "
                            "datagram_received(): subclass asyncio.DatagramProtocol")
        self._base = base
        self._sock = sock
        self._protocol = protocol
        # Only datagram_received is required: the asyncio docs' UDP echo server has no other
        # callback but connection_made, and asyncio runs it.
        self._error_received = getattr(protocol, "error_received", None) or _nothing
        self._address = remote_addr
        sock.setblocking(False)
        self._extra = {"socket": sock, "sockname": sock.getsockname(),
                       "peername": remote_addr and sock.getpeername()}
        self._queue: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._queued = 0
        self._high, self._low = write_limits(None, None)
        self._paused = False
        self._closing = self._lost = False
        self.datagrams_in = self.datagrams_out = self.truncated = 0
        fd = sock.fileno()
        self._read_ev = Event(base, fd, EV_READ | EV_PERSIST, self._on_readable)
        self._write_ev = Event(base, fd, EV_WRITE | EV_PERSIST, self._on_writable)
        base.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        if self._lost:
            return
        self._scratch = thread_scratch()
        if not self._call(getattr(self._protocol, "connection_made", _nothing), self):
            return
        if not self._closing:
            try:
                self._read_ev.add()
            except (OSError, ValueError) as exc:
                self._force_close(exc)

    def _call(self, fn: Callable, *args: Any) -> bool:
        """Run a protocol callback; one that raises ends the endpoint (False)."""
        try:
            fn(*args)
            return True
        except BaseException as exc:  # SystemExit too: it ends this endpoint, not the loop
            self._report(exc, f"protocol.{fn.__name__}() failed")
            self._force_close(exc)
            return False

    def _report(self, exc: BaseException, message: str) -> None:
        """Through the base's exception handler, with asyncio's context keys (as Connection)."""
        self._base.call_exception_handler({"message": message, "exception": exc, "transport": self,
                                           "protocol": self._protocol,
                                           "sockname": self._extra["sockname"]})

    # ------------------------------------------------------------------ receiving

    def _on_readable(self, fd: int, what: int, arg: Any) -> None:
        scratch = self._scratch
        recvmsg_into = self._sock.recvmsg_into
        received = self._protocol.datagram_received
        for _ in range(_RECV_BATCH):
            if self._closing:
                return
            try:
                n, _, flags, addr = recvmsg_into((scratch,))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ECONNREFUSED after an ICMP port unreachable, ...
                self._call(self._error_received, exc)
                return
            if flags & _MSG_TRUNC:
                self.truncated += 1
                self._call(self._error_received, OSError(
                    errno.EMSGSIZE, f"datagram from {addr!r} dropped: larger than the "
                    f"{len(scratch)}-byte receive buffer"))
                continue
            self.datagrams_in += 1
            if not self._call(received, scratch[:n].tobytes(), addr):
                return

    # ------------------------------------------------------------------ sending

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (None: the remote_addr of a connected endpoint).

        TypeError for data that is not bytes-like; ValueError for an addr other than the
        connected one, or none on an unconnected endpoint. Queued when the kernel's buffer is
        full; errors go to error_received. Ignored once closing.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be a bytes-like object (bytes, bytearray or memoryview), "
                            f"not {type(data).__name__}")
        if self._address is not None:
            if addr not in (None, self._address):
                raise ValueError(f"addr must be None or {self._address!r} on a connected endpoint")
            addr = None
        elif addr is None:
            raise ValueError("addr is required: this endpoint has no remote_addr")
        if self._closing:
            return
        data = bytes(data)
        if not self._queue:
            try:
                self._send(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                try:
                    self._write_ev.add()
                except (OSError, ValueError) as exc:
                    self._force_close(exc)
                    return
            except OSError as exc:
                self._call(self._error_received, exc)
                return
        self._queue.append((data, addr))
        self._queued += len(data)
        if not self._paused and self._queued > self._high:
            self._paused = True
            self._call(getattr(self._protocol, "pause_writing", _nothing))

    def _send(self, data: bytes, addr: Any) -> None:
        if addr is None:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)
        self.datagrams_out += 1

    def _on_writable(self, fd: int, what: int, arg: Any) -> None:
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self._send(data, addr)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                queue.popleft()
                self._queued -= len(data)
                if not self._call(self._error_received, exc):
                    return
                continue
            queue.popleft()
            self._queued -= len(data)
        if self._paused and self._queued <= self._low:
            self._paused = False
            if not self._call(getattr(self._protocol, "resume_writing", _nothing)):
                return
        if not queue and not self._lost:
            self._write_ev.delete()
            if self._closing:
                self._schedule_lost(None)

    def get_write_buffer_size(self) -> int:
        """Bytes of datagrams queued, not yet taken by the kernel."""
        return self._queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """The watermarks, by the stream transports' (asyncio's) rules."""
        self._high, self._low = write_limits(high, low)

    # ------------------------------------------------------------------ the end and the rest

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop receiving; connection_lost(None) once the queued datagrams are sent."""
        if self._closing:
            return
        self._closing = True
        self._read_ev.delete()
        if not self._queue:
            self._schedule_lost(None)

    def abort(self) -> None:
        """Close at once, dropping queued datagrams: connection_lost(None)."""
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._closing = True
        self._queue.clear()
        self._queued = 0
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        self._read_ev.delete()
        self._write_ev.delete()
        self._base.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            getattr(self._protocol, "connection_lost", _nothing)(exc)
        except BaseException as error:  # SystemExit too: reported, the loop goes on
            self._report(error, "protocol.connection_lost() failed")
        finally:
            self._sock.close()
            self._protocol = self._error_received = None
            self._read_ev = self._write_ev = None  # break the transport <-> event cycles

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """"socket", "sockname", "peername" (None unless connected)."""
        value = self._extra.get(name)
        return default if value is None else value

    def get_protocol(self) -> Any:
        return self._protocol

    @property
    def base(self) -> EventBase:
        """The EventBase whose loop thread serves this endpoint."""
        return self._base

    def __repr__(self) -> str:
        state = "lost" if self._lost else "closing" if self._closing else "open"
        return f"<DatagramTransport {state} {self._extra['sockname']} -> {self._address}>"


def _check_addr(value: object, name: str) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError(f"{name} must be a (host, port) tuple or None, not {value!r}")
    try:
        check_host_port(value[0], value[1], passive=True)
    except TypeError as exc:
        raise BadArgumentType(name, f"{name}: {exc}") from None
    except ValueError as exc:
        raise BadArgumentValue(name, f"{name}: {exc}") from None
    return value


def _infos(addr: tuple | None, family: int, passive: bool, name: str) -> list:
    if addr is None:
        return []
    try:
        infos = socket.getaddrinfo(addr[0] or None, addr[1], family, socket.SOCK_DGRAM, 0,
                                   socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as exc:
        raise socket.gaierror(exc.errno, f"{name}: cannot resolve {addr[0]!r}: {exc.strerror}") from None
    return [(info[0], info[4]) for info in infos]


def _open_socket(local: tuple | None, remote: tuple | None, family: int,
                 reuse_port: bool) -> tuple[socket.socket, Any]:
    """A bound/connected non-blocking datagram socket and its remote address (or None)."""
    remotes = _infos(remote, family, False, "remote_addr") or [(family, None)]
    last: OSError | None = None
    for fam, raddr in remotes:
        locals_ = _infos(local, fam, True, "local_addr") or [(fam, None)]
        for lfam, laddr in locals_:
            sock = socket.socket(lfam, socket.SOCK_DGRAM)
            try:
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if laddr is not None:
                    sock.bind(laddr)
                if raddr is not None:
                    sock.connect(raddr)
                return sock, raddr
            except OSError as exc:
                sock.close()
                last = OSError(exc.errno, f"datagram endpoint {local or ''} -> {remote or ''}: "
                               f"{exc.strerror}")
    raise last or OSError(errno.EADDRNOTAVAIL, "no usable address")


def open_datagram_endpoint(base: EventBase, protocol_factory: Callable[[], Any], *,
                           local_addr: tuple | None = None, remote_addr: tuple | None = None,
                           reuse_port: bool = False, family: int = 0) -> DatagramTransport:
    """A datagram endpoint bound to ``local_addr`` and/or connected to ``remote_addr`` (both
    (host, port); port 0 picks one), serving ``protocol_factory()`` — an asyncio.DatagramProtocol
    — in base's loop thread (connection_made on its next pass). ``family``: 0 (from the
    addresses), AF_INET or AF_INET6; with neither address it is required. Returns the transport;
    bad arguments raise TypeError/ValueError naming them, bind/connect errors OSError. Any
    thread may call this.
    """
    if not isinstance(base, EventBase):
        raise TypeError(f"base must be an EventBase, not {type(base).__name__}")
    if not callable(protocol_factory):
        raise TypeError(f"protocol_factory must be callable, not {type(protocol_factory).__name__}")
    local = _check_addr(local_addr, "local_addr")
    remote = _check_addr(remote_addr, "remote_addr")
    if type(reuse_port) is not bool:
        raise TypeError(f"reuse_port must be a bool, not {type(reuse_port).__name__}")
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port=True is not supported on this platform (no SO_REUSEPORT)")
    if family not in (0, socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"family must be 0, AF_INET or AF_INET6, got {family!r}")
    if local is None and remote is None and family == 0:
        raise ValueError("give local_addr, remote_addr or family")
    sock, raddr = _open_socket(local, remote, family, reuse_port)
    try:
        return DatagramTransport(base, sock, protocol_factory(), remote_addr=raddr)
    except BaseException:
        sock.close()
        raise
