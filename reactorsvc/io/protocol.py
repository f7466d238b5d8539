"""Protocol: the callbacks a Connection (Transport) drives, as asyncio.Protocol names them.

Subclassing is optional: any object with these six methods works, including a class written
for ``asyncio.Protocol`` (unchanged). Every method runs in the connection's loop thread,
``connection_made`` first and ``connection_lost`` last (exactly once).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Protocol"]


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
