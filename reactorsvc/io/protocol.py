"""Protocol: the callbacks a Connection (Transport) drives, as asyncio.Protocol names them, and
ProtocolCalls: what a transport binds from a protocol object once (asyncio's rules on what
is optional).

Subclassing is optional: any object with ``connection_made``, ``connection_lost`` and
``data_received`` works, including a class written for ``asyncio.Protocol`` (unchanged).
``eof_received``, ``pause_writing`` and ``resume_writing`` may be missing, as with asyncio: a
missing ``eof_received`` means "close", the others mean "nothing to do". A protocol with
``get_buffer(sizehint)`` and ``buffer_updated(nbytes)`` (asyncio.BufferedProtocol) is fed
through its own buffer instead of ``data_received``. Every method runs in the connection's
loop thread, ``connection_made`` first and ``connection_lost`` last (exactly once).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["Protocol", "ProtocolCalls", "feed_buffered", "protocol_buffer"]


class Protocol:
    """Base class with no-op callbacks (asyncio.Protocol's); override what you need."""

    __slots__ = ()

    def connection_made(self, transport: Any) -> None:
        """The connection is up; ``transport`` is its Connection. Called first, once."""

    def data_received(self, data: bytes) -> None:
        """Bytes arrived (a non-empty ``bytes``, at most 64 KiB per call)."""

    def eof_received(self) -> bool | None:
        """The peer shut down its write side. A false value (the default) closes the
        transport; True keeps it half-open so the protocol can still write."""
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is closed: ``exc`` is None for a normal close or abort(), else
        the error that ended it (ConnectionResetError, TimeoutError, ...). Called last, once."""

    def pause_writing(self) -> None:
        """The transport's write buffer went over the high watermark: stop writing."""

    def resume_writing(self) -> None:
        """The write buffer drained to the low watermark: writing may go on."""


def _nothing() -> None:
    return None


def _method(protocol: object, name: str, required: bool) -> Callable | None:
    method = getattr(protocol, name, None)
    if method is not None and not callable(method):
        raise TypeError(f"protocol {type(protocol).__name__}.{name} is not callable")
    if method is None and required:
        raise TypeError(f"protocol {type(protocol).__name__} has no callable {name}(): "
                        "subclass reactorsvc.Protocol or asyncio.Protocol")
    return method


class ProtocolCalls:
    """The protocol's callbacks, bound once; optional ones replaced by no-ops.

    ``buffered`` is True for a BufferedProtocol (``get_buffer`` and ``buffer_updated``; then
    ``data_received`` is None and never called). TypeError names a required method that is
    missing or an attribute that is not callable. Immutable once built: any thread may read it.
    """

    __slots__ = ("connection_made", "connection_lost", "data_received", "get_buffer",
                 "buffer_updated", "eof_received", "pause_writing", "resume_writing", "buffered")

    def __init__(self, protocol: object) -> None:
        self.connection_made = _method(protocol, "connection_made", True)
        self.connection_lost = _method(protocol, "connection_lost", True)
        get_buffer = _method(protocol, "get_buffer", False)
        buffer_updated = _method(protocol, "buffer_updated", False)
        self.buffered = get_buffer is not None and buffer_updated is not None
        self.get_buffer = get_buffer if self.buffered else None
        self.buffer_updated = buffer_updated if self.buffered else None
        self.data_received = None if self.buffered else _method(protocol, "data_received", True)
        self.eof_received = _method(protocol, "eof_received", False) or _nothing
        self.pause_writing = _method(protocol, "pause_writing", False) or _nothing
        self.resume_writing = _method(protocol, "resume_writing", False) or _nothing


def protocol_buffer(calls: ProtocolCalls, sizehint: int) -> memoryview:
    """``get_buffer(sizehint)`` as a writable byte view; RuntimeError for an empty one (as
    asyncio), TypeError for something that is not a writable buffer."""
    buf = calls.get_buffer(sizehint)
    try:
        view = memoryview(buf).cast("B")
    except TypeError:
        raise TypeError(f"get_buffer() must return a writable buffer, not {type(buf).__name__}") from None
    if view.readonly:
        raise TypeError("get_buffer() returned a read-only buffer")
    if not len(view):
        raise RuntimeError("get_buffer() returned an empty buffer")
    return view


def feed_buffered(calls: ProtocolCalls, data: bytes | memoryview) -> None:
    """Copy ``data`` into the protocol's buffers (as many get_buffer()/buffer_updated() rounds
    as it takes). Raises what the protocol raises."""
    view = memoryview(data)
    while len(view):
        buf = protocol_buffer(calls, len(view))
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        calls.buffer_updated(n)
        view = view[n:]
