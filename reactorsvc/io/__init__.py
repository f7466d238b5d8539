"""Buffered I/O on top of the reactor: Buffer, Connection (Transport, with TLS), Listener (and
the ListenerOptions it and its connections take), connect, DatagramTransport
(open_datagram_endpoint).

Protocol callbacks and Transport methods belong to the connection's loop thread; see
connection.py for the thread contract and listener.py for back-pressure on accept.
"""

from .buffer import (EOL_ANY, EOL_CRLF, EOL_CRLF_STRICT, EOL_LF, EOL_NUL, Buffer, BufferFull,
                     EolStyle)
from .client import connect
from .connection import Connection
from .datagram import DatagramTransport, open_datagram_endpoint
from .listener import Listener, start_server
from .options import ListenerOptions
from .protocol import Protocol
from .timeouts import TimerHandle

# The asyncio name for what a Connection is.
Transport = Connection

__all__ = ["Buffer", "BufferFull", "Connection", "DatagramTransport", "EOL_ANY", "EOL_CRLF",
           "EOL_CRLF_STRICT", "EOL_LF", "EOL_NUL", "EolStyle", "Listener", "ListenerOptions",
           "Protocol", "TimerHandle", "Transport", "connect", "open_datagram_endpoint",
           "start_server"]
