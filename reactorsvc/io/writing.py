"""The write half of Connection: direct send, the queue and its EV_WRITE flush, the
watermarks (asyncio's flow control) and write_eof.

While ``_direct`` holds (connected, nothing queued, no write_eof, not closing) ``write()``
calls ``send()`` at once — the common case costs one syscall and no copy. What the kernel does
not take is appended to the Buffer (bytes are kept, not copied; a partial send only moves an
offset), ``_direct`` drops, and a persistent EV_WRITE event is added; its callback flushes with
``sendmsg`` (up to 64 chunks per call) and, once the buffer is empty, deletes the event and
restores ``_direct`` — or finishes a pending close() or write_eof(). pause_writing() is called
from inside the write() that takes the buffer over the high watermark, resume_writing() from
the flush that brings it down to the low one, as asyncio's selector transports do.

Loop thread only (a layer of Connection; its slots are ConnectionState's, state.py).
"""

from __future__ import annotations

import os
import socket
from time import monotonic
from typing import Any, Iterable

try:
    import cython
except ImportError:  # a pure install without Cython: see reactorsvc/_nocython.py
    from .. import _nocython as cython

from .._checks import check_optional_int
from .state import ConnectionState

__all__ = ["WritingMixin", "DEFAULT_HIGH", "write_limits"]

# With a default SIGPIPE disposition (embedders), a send to a closed peer would kill the process.
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
DEFAULT_HIGH = 64 * 1024  # asyncio's default high watermark; low defaults to a quarter of it


def write_limits(high: int | None, low: int | None) -> tuple[int, int]:
    """(high, low) watermarks by asyncio's rules: high defaults to 64 KiB, or 4 * low when only
    low is given; low defaults to high // 4. TypeError/ValueError unless high >= low >= 0."""
    check_optional_int(high, "high")
    check_optional_int(low, "low")
    if high is None:
        high = DEFAULT_HIGH if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


class WritingMixin(ConnectionState):
    """write, writelines, write_eof, flow control (see the module docstring)."""

    __slots__ = ()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` (queued if the kernel does not take it all at once).

        TypeError for anything but bytes, bytearray or memoryview (str included);
        RuntimeError after write_eof(); ignored once the connection is lost.
        """
        if self._direct and type(data) is bytes:
            self._send_now(data)
        else:
            self._write_slow(data)

    def _send_now(self, data: bytes) -> None:
        """Nothing is queued: send() at once, queue what the kernel does not take."""
        if cython.compiled:
            # send(2) straight from the bytes object: what sock.send does, without the bound
            # method call and the buffer protocol. The fd is read from the socket each time
            # (-1 once closed: EBADF, as sock.send would raise).
            sfd = self._sock.fileno()
            buf = PyBytes_AS_STRING(data)
            size = len(data)
            with cython.nogil:  # as sock.send: other threads run during the syscall
                n = send(sfd, buf, size, _SEND_FLAGS)
                err = errno
            if n < 0:
                if not would_block(err):
                    self._fatal_error(OSError(err, os.strerror(err)), "write failed")
                    return
                n = 0
        else:
            try:
                n = self._send(data, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._fatal_error(exc, "write failed")
                return
        self.bytes_out += n
        if n == len(data):
            if self._timed and n:
                self._last_write = monotonic()
            return
        self._queue(data, n)

    def _write_slow(self, data: Any) -> None:
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError("data must be a bytes-like object (bytes, bytearray or "
                                f"memoryview), not {type(data).__name__}")
            data = bytes(data)
        if self._eof:
            raise RuntimeError("write() after write_eof()")
        if self._lost or not data:
            return
        if self._tls is not None:
            self._tls.write(data)
        elif self._direct:
            self.write(data)
        else:
            self._wbuf.append(data)
            self._maybe_pause_protocol()

    def _queue(self, data: bytes, sent: int) -> None:
        """The kernel took ``sent`` bytes of ``data``: queue the rest and wait for EV_WRITE."""
        wbuf = self._wbuf
        wbuf.append(data)
        wbuf.drain(sent)  # moves an offset: the rest is not copied
        self._wait_writable(sent)

    def _wait_writable(self, sent: int) -> None:
        """Output is queued: leave the direct path and flush on EV_WRITE."""
        self._direct = False
        if self._timed:
            self._write_progress = now = monotonic()
            if sent:
                self._last_write = now
        if self._add_writer():
            self._maybe_pause_protocol()

    def _add_writer(self) -> bool:
        try:
            self._write_ev.add()
        except (OSError, ValueError) as exc:  # connection.WATCH_ERRORS
            self._fatal_error(exc, "cannot watch the socket")
            return False
        if self._write_timeout is not None:
            self._arm_timer()
        return True

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write each item, in order, flushing them together with sendmsg (scatter-gather)."""
        try:
            items = list(list_of_data)
        except TypeError:
            raise TypeError("list_of_data must be an iterable of bytes-like objects, not "
                            f"{type(list_of_data).__name__}") from None
        for i, item in enumerate(items):
            if type(item) is not bytes and not isinstance(item, (bytearray, memoryview)):
                raise TypeError(f"list_of_data[{i}] must be bytes, bytearray or memoryview, "
                                f"not {type(item).__name__}")
        if self._eof:
            raise RuntimeError("writelines() after write_eof()")
        if self._lost:
            return
        if self._tls is not None:
            self._tls.write(b"".join(items))
            return
        wbuf = self._wbuf
        wbuf.extend(items)
        if not self._direct:
            self._maybe_pause_protocol()
            return
        try:
            n = wbuf.write_to(self._sock)
        except OSError as exc:
            self._fatal_error(exc, "write failed")
            return
        self.bytes_out += n
        if len(wbuf):
            self._wait_writable(n)
        elif self._timed and n:
            self._last_write = monotonic()

    def _on_writable(self, fd: int, what: int, arg: Any) -> None:
        wbuf = self._wbuf
        try:
            n = wbuf.write_to(self._sock)
        except OSError as exc:
            self._fatal_error(exc, "write failed")
            return
        if n:
            self.bytes_out += n
            if self._timed:
                self._last_write = self._write_progress = monotonic()
        if self._protocol_paused and self.get_write_buffer_size() <= self._low:
            self._protocol_paused = False
            try:
                self._calls.resume_writing()  # may write more, or close
            except BaseException as exc:  # reported, and the connection goes on (asyncio)
                self._report_protocol_error(exc, "protocol.resume_writing() failed")
        if len(wbuf) or self._lost:
            return
        self._write_ev.delete()
        if self._closing:
            self._schedule_lost(None)  # close() was waiting for the flush
        elif self._eof:
            self._shutdown_write()
        else:
            self._direct = self._tls is None

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high:
            return
        self._protocol_paused = True
        try:
            self._calls.pause_writing()
        except BaseException as exc:  # reported, and the connection goes on (asyncio)
            self._report_protocol_error(exc, "protocol.pause_writing() failed")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the watermarks (``write_limits``' rules, asyncio's)."""
        self._high, self._low = write_limits(high, low)
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """(low, high), as asyncio."""
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        """Bytes queued, not yet taken by the kernel (over TLS: ciphertext queued plus
        plaintext waiting for the handshake)."""
        tls = self._tls
        return len(self._wbuf) if tls is None else len(self._wbuf) + tls.pending

    def can_write_eof(self) -> bool:
        """True: stream sockets can half-close; False over TLS."""
        return self._tls is None

    def write_eof(self) -> None:
        """Shut down the write side (SHUT_WR) once the queued data is flushed; reading goes
        on. Later write() calls raise RuntimeError. No-op when closing or repeated.
        NotImplementedError over TLS (as asyncio: TLS cannot half-close)."""
        if self._tls is not None:
            raise NotImplementedError("TLS does not support half-closes (write_eof)")
        if self._closing or self._eof:
            return
        self._eof = True
        if self._direct:
            self._direct = False
            self._shutdown_write()

    def _send_raw(self, data: bytes) -> None:
        """TLS ciphertext to the socket: sent at once while nothing is queued, else queued
        behind what is (the EV_WRITE flush is then already pending)."""
        if self._lost:
            return
        if len(self._wbuf):
            self._wbuf.append(data)
            self._maybe_pause_protocol()
        else:
            self._send_now(data)

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "shutdown(SHUT_WR) failed")
