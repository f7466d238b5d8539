"""echo: every byte received is written back, in order; on a datagram endpoint
(``bind: "udp:HOST:PORT"``) every datagram is sent back to its sender.

Flow control keeps memory bounded: when the transport's write buffer crosses
its high-water mark (``pause_writing``) the protocol stops reading
(``transport.pause_reading()``), and reads again at ``resume_writing``; a client
that sends without ever reading therefore stalls on its own socket instead of
growing the server's buffer. At end of input the connection closes once
everything echoed so far has been flushed (``eof_received`` returns False).

Options: none (``EchoProtocol()``); any option is a TypeError naming it.
Thread-safety: one instance per connection, used only from its thread.
"""

from __future__ import annotations

import asyncio


class EchoProtocol(asyncio.Protocol):
    """Echo one connection's bytes back; ``bytes_echoed`` counts them."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self.bytes_echoed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self.bytes_echoed += len(data)
        self._transport.write(data)

    def datagram_received(self, data: bytes, addr: object) -> None:
        """As an asyncio.DatagramProtocol: answer each datagram with itself."""
        assert self._transport is not None
        self.bytes_echoed += len(data)
        self._transport.sendto(data, addr)

    def eof_received(self) -> bool:
        return False  # close after the echoed data is flushed

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
