"""discard: read everything, write nothing (RFC 863), count the bytes.

At end of input the connection closes (``eof_received`` returns False).

Options: none (``DiscardProtocol()``); any option is a TypeError naming it.
Thread-safety: one instance per connection, used only from its thread.
"""

from __future__ import annotations

import asyncio


class DiscardProtocol(asyncio.Protocol):
    """Drop one connection's input; ``bytes_discarded`` counts it."""

    def __init__(self) -> None:
        self.bytes_discarded = 0

    def data_received(self, data: bytes) -> None:
        self.bytes_discarded += len(data)

    def eof_received(self) -> bool:
        return False  # nothing to flush: close at once
