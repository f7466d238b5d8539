"""The read half of Connection: the read event's callbacks (into the thread's scratch area, or
into a BufferedProtocol's own buffer), EOF, and pause/resume_reading.

Over TLS the scratch path is used and ``_data_received`` is the TLS layer's ``feed`` (the socket
carries ciphertext; tls.py delivers the plaintext), and EOF goes to the TLS layer too.
Loop thread only (a layer of Connection over WritingMixin; its slots are ConnectionState's,
state.py).
"""

from __future__ import annotations

import os
from time import monotonic
from typing import Any, Callable

try:
    import cython
except ImportError:  # a pure install without Cython: see reactorsvc/_nocython.py
    from .. import _nocython as cython

from .protocol import protocol_buffer
from .writing import WritingMixin

__all__ = ["ReadingMixin"]

# What Event.add() raises for a socket the backend cannot watch (connection.WATCH_ERRORS).
_WATCH_ERRORS = (OSError, ValueError)


class ReadingMixin(WritingMixin):
    """The reading callbacks and pause/resume_reading (see the module docstring)."""

    __slots__ = ()

    def _on_readable(self, fd: int, what: int, arg: Any) -> None:
        if cython.compiled:
            # recv(2) into the scratch area and one copy into a bytes object: what
            # sock.recv_into and scratch[:n].tobytes() do, without their two method calls, a
            # memoryview slice and the argument parsing. The fd is read from the socket each
            # time (-1 once closed: EBADF, as sock.recv_into would raise).
            sfd = self._sock.fileno()
            # The area stays put after the release: self._scratch, a memoryview, holds its
            # bytearray's own export for as long as this connection holds it.
            PyObject_GetBuffer(self._scratch, cython.address(view), PyBUF_WRITABLE)
            area = cython.cast(_cchars, view.buf)
            size = view.len
            PyBuffer_Release(cython.address(view))
            with cython.nogil:  # as sock.recv_into: other threads run during the syscall
                n = recv(sfd, area, size, 0)
                err = errno
            data = PyBytes_FromStringAndSize(area, n) if n > 0 else None
            if n < 0:
                if not would_block(err):
                    self._fatal_error(OSError(err, os.strerror(err)), "read failed")
                return
        else:
            try:
                n = self._recv_into(self._scratch)  # the whole 64 KiB scratch area
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fatal_error(exc, "read failed")
                return
            data = self._scratch[:n].tobytes() if n else None
        if n:
            self.bytes_in += n
            if self._timed:
                self._last_read = monotonic()
            try:
                self._data_received(data)
            except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
                self._protocol_error(exc, "protocol.data_received() failed")
        else:
            self._on_eof()

    def _reader(self) -> Callable[[int, int, Any], None]:
        """The read event's callback: into our scratch area, or into the protocol's buffer."""
        if self._calls.buffered and self._tls is None:
            return self._on_readable_buffered
        return self._on_readable

    def _on_readable_buffered(self, fd: int, what: int, arg: Any) -> None:
        """BufferedProtocol: recv_into the protocol's own buffer (asyncio's semantics)."""
        buf = self._protocol_buffer()
        if buf is None:
            return
        try:
            n = self._recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "read failed")
            return
        if not n:
            self._on_eof()
            return
        self.bytes_in += n
        if self._timed:
            self._last_read = monotonic()
        try:
            self._calls.buffer_updated(n)
        except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
            self._protocol_error(exc, "protocol.buffer_updated() failed")

    def _protocol_buffer(self) -> memoryview | None:
        """A BufferedProtocol's get_buffer(-1); None once its failure has closed the connection."""
        try:
            return protocol_buffer(self._calls, -1)
        except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
            self._protocol_error(exc, "protocol.get_buffer() failed")
            return None

    def _on_eof(self) -> None:
        self._read_eof = True
        self._read_ev.delete()
        if self._tls is not None:
            self._tls.on_raw_eof()
            return
        try:
            keep_open = self._calls.eof_received()
        except BaseException as exc:  # SystemExit too: it ends this connection, not the worker
            self._protocol_error(exc, "protocol.eof_received() failed")
            return
        if not keep_open:
            self.close()

    def _reading_enabled(self) -> bool:
        return self._started and not (self._paused or self._read_eof or self._closing)

    def pause_reading(self) -> None:
        """Stop calling data_received until resume_reading(). No-op if paused or closing."""
        if self._closing or self._paused:
            return
        self._paused = True
        if self._started and not self._read_eof:
            self._read_ev.delete()

    def resume_reading(self) -> None:
        """Undo pause_reading() (a read timeout counts from now). No-op if not paused."""
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._started and not self._read_eof:
            try:
                self._read_ev.add()
            except _WATCH_ERRORS as exc:
                self._fatal_error(exc, "cannot watch the socket")
                return
            if self._read_timeout is not None:
                self._last_read = monotonic()
                self._arm_timer()
            if self._tls is not None:  # plaintext decrypted before the pause is still owed
                self._base.call_soon(self._resume_tls)

    def _resume_tls(self) -> None:
        if self._tls is not None and not self._lost:
            self._tls.read_plaintext()

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        return not self._paused and not self._closing
