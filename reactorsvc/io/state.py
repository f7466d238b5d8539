"""ConnectionState: every slot of a Connection, in one class at the root of its read and write
layers.

A Connection is ``Connection(ReadingMixin, TimeoutsMixin)`` with ``ReadingMixin(WritingMixin)``
and ``WritingMixin(ConnectionState)``: the read and write paths form one linear chain over
this class, so that the compiled build (state.pxd, writing.pxd, reading.pxd: Cython cdef
classes, which have one C base each) gives them typed slots, C-level flags and C calls on the
per-message path, while the timeouts and the rest of the Transport stay Python (the MRO is the
one the three side-by-side mixins had: Connection, reading, writing, then the timeouts).
The slots are set by Connection.__init__ and its layers (connection.py, timeouts.py).

Loop thread only, as Connection (Connection.start, which may run in another thread, sets them
before the connection is handed to its loop with call_soon_threadsafe).
"""

from __future__ import annotations

__all__ = ["ConnectionState"]


class ConnectionState:
    """The slots of a Connection (see the module docstring)."""

    __slots__ = ("_base", "_sock", "_protocol", "_calls", "_data_received", "_recv_into", "_send",
                 "_scratch", "_wbuf", "_read_ev", "_write_ev", "_direct", "_owned", "_started",
                 "_paused", "_read_eof", "_eof", "_closing", "_lost", "_sock_closed",
                 "_protocol_paused", "_high", "_low", "_worker", "_extra", "_on_close",
                 "_connector", "_tls", "bytes_in", "bytes_out",
                 "_idle_timeout", "_read_timeout", "_write_timeout", "_timed", "_timer",
                 "_last_read", "_last_write", "_write_progress", "_handles", "__weakref__")
