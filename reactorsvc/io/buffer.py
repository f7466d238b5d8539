"""Buffer: libevent's evbuffer in Python — a byte queue between sockets and protocols.

Data is a deque of immutable ``bytes`` chunks plus an offset into the first one, so:
- appending ``bytes`` stores the object itself (no copy); other bytes-like input is copied once,
  because its owner may mutate it later;
- draining moves the head offset or pops whole chunks (no copy);
- reading or peeking a prefix joins only the chunks that prefix covers; a peek that spans chunks
  merges them into one head chunk (libevent's pullup), so a parser peeking again pays nothing;
- ``read_from`` receives into a per-thread 64 KiB scratch area that is reused by every read
  (no allocation that grows with the socket buffer) and copies out only the bytes received;
- ``write_to`` hands up to ``_IOV_CAP`` chunks to one ``sendmsg`` (scatter-gather) and drains
  what the kernel took.

A Buffer is owned by one thread (its loop's): no method is thread-safe and none blocks unless the
socket given to ``read_from``/``write_to`` is itself blocking.
"""

from __future__ import annotations

import enum
import os
import socket
import threading
from collections import deque
from collections.abc import Iterable
from itertools import islice

__all__ = ["Buffer", "BufferFull", "EolStyle", "SCRATCH_SIZE",
           "EOL_ANY", "EOL_CRLF", "EOL_CRLF_STRICT", "EOL_LF", "EOL_NUL"]

# The reused area read_from() receives into, and the most one read takes: at most 64 KiB
# (issue 4), where asyncio's fresh recv(256 KiB) buffers cost an mmap per read.
SCRATCH_SIZE = 64 * 1024


# Chunks per sendmsg(): 64 keeps building the vector cheap (write_to() loops for more), and
# never above the kernel's IOV_MAX (16 is POSIX's guaranteed minimum).
try:
    _IOV_CAP = max(1, min(64, os.sysconf("SC_IOV_MAX")))
except (AttributeError, ValueError, OSError):
    _IOV_CAP = 16
# With a default SIGPIPE disposition (embedders), a send to a closed peer would kill the process.
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_CRLF_BYTES = b"\r\n"
# One scratch area per thread, not per Buffer: 1,000 idle connections must not hold 64 MiB.
_tls = threading.local()


class EolStyle(enum.IntEnum):
    """libevent's ``evbuffer_eol_style``, with libevent's values."""

    ANY = 0          # any run of CR and LF characters
    CRLF = 1         # an optional CR followed by a LF
    CRLF_STRICT = 2  # exactly CR LF
    LF = 3           # a single LF
    NUL = 4          # a single NUL byte


EOL_ANY = EolStyle.ANY
EOL_CRLF = EolStyle.CRLF
EOL_CRLF_STRICT = EolStyle.CRLF_STRICT
EOL_LF = EolStyle.LF
EOL_NUL = EolStyle.NUL


class BufferFull(ValueError):
    """Raised instead of growing a Buffer past its ``max_size``; nothing was added."""

    def __init__(self, limit: int, size: int) -> None:
        super().__init__(
            f"buffer size limit exceeded: max_size is {limit} bytes, "
            f"the buffer would hold {size} bytes")
        self.limit = limit
        self.size = size


def _check_count(value: object, name: str) -> int:
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _as_bytes(data: object, name: str) -> bytes:
    """``data`` as immutable bytes: the object itself for bytes, else a copy."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        raise TypeError(f"{name} must be a bytes-like object, not str")
    try:
        with memoryview(data) as view:  # type: ignore[arg-type]
            return view.tobytes()
    except TypeError:
        raise TypeError(
            f"{name} must be a bytes-like object, not {type(data).__name__}") from None


class Buffer:
    """A byte queue with libevent's evbuffer operations. Not thread-safe: one owner thread.

    ``max_size`` (None: unlimited) bounds ``len(buffer)``: an append or read that would pass it
    raises BufferFull and adds nothing.
    """

    __slots__ = ("_chunks", "_off", "_size", "_max_size")

    def __init__(self, data: bytes = b"", *, max_size: int | None = None) -> None:
        self._chunks: deque[bytes] = deque()
        self._off = 0      # bytes of _chunks[0] already drained
        self._size = 0     # buffered bytes: sum of chunk lengths minus _off
        self._max_size = None if max_size is None else _check_count(max_size, "max_size")
        if data:
            self.append(data)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (f"<Buffer size={self._size} chunks={len(self._chunks)} "
                f"max_size={self._max_size}>")

    @property
    def max_size(self) -> int | None:
        """The size limit in bytes, None for none. Lowering it below len() only stops growth."""
        return self._max_size

    @max_size.setter
    def max_size(self, value: int | None) -> None:
        self._max_size = None if value is None else _check_count(value, "max_size")

    # ----------------------------------------------------------------- adding data

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` at the end. ``bytes`` is kept as is; other bytes-like input is copied.

        Raises TypeError for non-bytes-like data (str included) and BufferFull over max_size.
        """
        if type(data) is not bytes:
            data = _as_bytes(data, "data")
        n = len(data)
        if not n:
            return
        if self._max_size is not None and self._size + n > self._max_size:
            raise BufferFull(self._max_size, self._size + n)
        self._chunks.append(data)
        self._size += n

    def extend(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Append each item of ``chunks``; all or nothing (max_size is checked for the total)."""
        items = [_as_bytes(c, "chunks item") for c in chunks]
        total = sum(map(len, items))
        if self._max_size is not None and self._size + total > self._max_size:
            raise BufferFull(self._max_size, self._size + total)
        self._chunks.extend(c for c in items if c)
        self._size += total

    def read_from(self, source: socket.socket | int, max: int | None = None) -> int:
        """Receive once from a socket (``recv_into``) or fd (``os.readv``) and append it.

        Reads at most ``max`` bytes (default and cap: SCRATCH_SIZE), and never more than
        max_size leaves room for. Returns the count received, 0 at EOF. BlockingIOError and
        other OSErrors propagate untouched; nothing is appended then. A buffer already at
        max_size raises BufferFull without reading.
        """
        if max is None:
            limit = SCRATCH_SIZE
        else:
            limit = _check_count(max, "max")
            if limit == 0:
                raise ValueError("max must be >= 1 (0 would be indistinguishable from EOF)")
            if limit > SCRATCH_SIZE:
                limit = SCRATCH_SIZE
        if self._max_size is not None:
            room = self._max_size - self._size
            if room <= 0:
                raise BufferFull(self._max_size, self._size + 1)
            if room < limit:
                limit = room
        try:
            view = _tls.view
        except AttributeError:  # this thread's first read
            view = _tls.view = memoryview(bytearray(SCRATCH_SIZE))
        if type(source) is int:
            if source < 0:
                raise ValueError(f"source must be a socket or an fd >= 0, got {source}")
            n = os.readv(source, [view[:limit]])
        else:
            try:
                recv_into = source.recv_into
            except AttributeError:
                raise TypeError("source must be a socket or an int fd, not "
                                f"{type(source).__name__}") from None
            n = recv_into(view, limit)
        if n:
            # Only the bytes received leave the scratch area, as a new immutable chunk.
            self._chunks.append(view[:n].tobytes())
            self._size += n
        return n

    # ----------------------------------------------------------------- removing data

    def drain(self, n: int) -> int:
        """Drop the first ``n`` bytes (all of them if n >= len). Returns the count dropped."""
        if type(n) is not int or n < 0:
            n = _check_count(n, "n")
        if n >= self._size:
            n = self._size
            self.clear()
            return n
        chunks = self._chunks
        left = n + self._off
        while left >= len(chunks[0]):
            left -= len(chunks.popleft())
        self._off = left
        self._size -= n
        return n

    def clear(self) -> None:
        """Drop everything."""
        self._chunks.clear()
        self._off = 0
        self._size = 0

    def read(self, n: int = -1) -> bytes:
        """Remove and return the first ``n`` bytes (fewer if fewer are buffered; -1: all)."""
        n = self._prefix_len(n)
        if not n:
            return b""
        chunks = self._chunks
        head = chunks[0]
        off = self._off
        if n <= len(head) - off:  # within the head chunk: the common case
            if n == len(head) and not off:
                data = chunks.popleft()  # the very object appended: no copy
            else:
                data = head[off:off + n]
                if off + n == len(head):
                    chunks.popleft()
                    off = 0
                else:
                    off += n
            self._off = off
            self._size -= n
            return data
        parts: list[bytes | memoryview] = [memoryview(head)[off:]]
        left = n - (len(head) - off)
        chunks.popleft()
        while left >= len(chunks[0]):
            chunk = chunks.popleft()
            parts.append(chunk)
            left -= len(chunk)
            if not left:
                break
        if left:
            parts.append(memoryview(chunks[0])[:left])
        self._off = left
        self._size -= n
        return b"".join(parts)

    def peek(self, n: int = -1) -> bytes:
        """Return the first ``n`` bytes (fewer if fewer are buffered; -1: all) without removing.

        A peek spanning chunks merges those chunks into one, so peeking again is cheap.
        """
        n = self._prefix_len(n)
        if not n:
            return b""
        head = self._chunks[0]
        off = self._off
        if n > len(head) - off:
            head = self._pullup(n)
            off = 0
        if not off and n == len(head):
            return head
        return head[off:off + n]

    def _prefix_len(self, n: int) -> int:
        """``n`` validated and clipped to the buffered size; -1 means everything."""
        if type(n) is not int:
            n = _check_count(n, "n")
        elif n < 0:
            if n != -1:
                raise ValueError(f"n must be >= 0, or -1 for everything, got {n}")
            return self._size
        return n if n < self._size else self._size

    def _pullup(self, n: int) -> bytes:
        """Merge the whole chunks covering the first ``n`` bytes into one head chunk."""
        chunks = self._chunks
        parts: list[bytes | memoryview] = [memoryview(chunks.popleft())[self._off:]]
        covered = len(parts[0])
        while covered < n:
            chunk = chunks.popleft()
            parts.append(chunk)
            covered += len(chunk)
        merged = b"".join(parts)
        chunks.appendleft(merged)
        self._off = 0
        return merged

    # ----------------------------------------------------------------- sending

    def write_to(self, sink: socket.socket | int) -> int:
        """Send as much as the kernel takes (``sendmsg`` of up to _IOV_CAP chunks per call, or
        ``os.writev`` for an int fd) and drain it. Returns the bytes sent.

        A full kernel buffer is not an error: BlockingIOError is absorbed and the count so far
        (possibly 0) returned. Other OSErrors (EPIPE, ECONNRESET, ...) propagate, unless some
        bytes already went out in this call: then the count is returned and the next call meets
        the error. Stops after a partial send, since the next try would only meet EAGAIN.
        """
        is_fd = type(sink) is int
        if is_fd:
            if sink < 0:
                raise ValueError(f"sink must be a socket or an fd >= 0, got {sink}")
        elif not hasattr(sink, "sendmsg"):
            raise TypeError(f"sink must be a socket or an int fd, not {type(sink).__name__}")
        chunks = self._chunks
        total = 0
        while self._size:
            if len(chunks) == 1:  # the common case: send() parses less than sendmsg()
                want = self._size
                data = memoryview(chunks[0])[self._off:] if self._off else chunks[0]
                iov = None
            else:
                iov, want = self._iov()
            try:
                if is_fd:
                    sent = os.write(sink, data) if iov is None else os.writev(sink, iov)
                elif iov is None:
                    sent = sink.send(data, _SEND_FLAGS)
                else:
                    sent = sink.sendmsg(iov, (), _SEND_FLAGS)
            except BlockingIOError:
                break
            except OSError:
                if total:
                    break
                raise
            if sent == self._size:
                self.clear()
            else:
                self.drain(sent)
            total += sent
            if sent < want:
                break
        return total

    def _iov(self) -> tuple[list[bytes | memoryview], int]:
        """The first _IOV_CAP chunks as a sendmsg() vector, and their byte count."""
        chunks = self._chunks
        iov: list[bytes | memoryview] = list(islice(chunks, _IOV_CAP))
        if self._off:
            iov[0] = memoryview(iov[0])[self._off:]
        want = self._size if len(iov) == len(chunks) else sum(map(len, iov))
        return iov, want

    # ----------------------------------------------------------------- searching

    def search(self, pattern: bytes, start: int = 0) -> int:
        """Offset of the first ``pattern`` starting at or after ``start``, or -1.

        Finds occurrences that span chunk boundaries, without joining the buffer.
        """
        if type(pattern) is not bytes:
            pattern = _as_bytes(pattern, "pattern")
        if type(start) is not int or start < 0:
            start = _check_count(start, "start")
        m = len(pattern)
        if not m:
            return start if start <= self._size else -1
        if start + m > self._size:
            return -1
        base = -self._off  # absolute offset of the current chunk's index 0
        lo = self._off     # first index of the current chunk holding buffered data
        tail = b""         # the last (up to m - 1) buffered bytes before the current chunk
        for chunk in self._chunks:
            clen = len(chunk)
            if base + clen <= start:  # no match can start in here: skip, carry nothing
                base += clen
                lo = 0
                continue
            if tail:
                # Matches that start in `tail` and end in this chunk.
                window = tail + chunk[:m - 1]
                wabs = base - len(tail)
                i = window.find(pattern, start - wabs if start > wabs else 0)
                if i >= 0:
                    return wabs + i
            i = chunk.find(pattern, start - base if start - base > lo else lo)
            if i >= 0:
                return base + i
            if m > 1:
                if clen - lo >= m - 1:
                    tail = chunk[clen - (m - 1):]
                else:
                    tail = (tail + chunk[lo:])[-(m - 1):]
            base += clen
            lo = 0
        return -1

    def _byte_at(self, pos: int) -> int:
        pos += self._off
        for chunk in self._chunks:
            if pos < len(chunk):
                return chunk[pos]
            pos -= len(chunk)
        raise IndexError(pos)

    def _find_eol_char(self, start: int) -> int:
        """Offset of the first CR or LF at or after ``start``, or -1."""
        base = -self._off
        lo = self._off
        for chunk in self._chunks:
            clen = len(chunk)
            if base + clen > start:
                begin = start - base if start - base > lo else lo
                lf = chunk.find(b"\n", begin)
                cr = chunk.find(b"\r", begin, lf if lf >= 0 else clen)
                if cr >= 0:
                    return base + cr
                if lf >= 0:
                    return base + lf
            base += clen
            lo = 0
        return -1

    def _crlf_run(self, pos: int) -> int:
        """Length of the run of CR/LF bytes starting at ``pos``, across chunks."""
        run = 0
        pos += self._off
        for chunk in self._chunks:
            clen = len(chunk)
            if pos >= clen:
                pos -= clen
                continue
            while pos < clen and chunk[pos] in _CRLF_BYTES:
                pos += 1
                run += 1
            if pos < clen:
                break
            pos = 0
        return run

    def search_eol(self, eol_style: EolStyle | int = EOL_CRLF,
                   start: int = 0) -> tuple[int, int]:
        """Find the first end of line at or after ``start`` (libevent's evbuffer_search_eol).

        Returns ``(offset, eol_length)``; ``(-1, 0)`` when no complete one is buffered.
        """
        if type(start) is not int or start < 0:
            start = _check_count(start, "start")
        if isinstance(eol_style, bool) or not isinstance(eol_style, int):
            raise TypeError(f"eol_style must be an EolStyle, not {type(eol_style).__name__}")
        if eol_style == EOL_LF:
            pos = self.search(b"\n", start)
            return (pos, 1) if pos >= 0 else (-1, 0)
        if eol_style == EOL_CRLF:
            pos = self.search(b"\n", start)
            if pos < 0:
                return -1, 0
            # A CR counts only if it lies after `start`, as in libevent.
            if pos > start and self._byte_at(pos - 1) == 13:
                return pos - 1, 2
            return pos, 1
        if eol_style == EOL_CRLF_STRICT:
            pos = self.search(b"\r\n", start)
            return (pos, 2) if pos >= 0 else (-1, 0)
        if eol_style == EOL_ANY:
            pos = self._find_eol_char(start)
            return (pos, self._crlf_run(pos)) if pos >= 0 else (-1, 0)
        if eol_style == EOL_NUL:
            pos = self.search(b"\0", start)
            return (pos, 1) if pos >= 0 else (-1, 0)
        raise ValueError(f"eol_style must be one of {[s.name for s in EolStyle]}, "
                         f"got {eol_style!r}")

    def readline(self, eol_style: EolStyle | int = EOL_CRLF) -> bytes | None:
        """Remove and return the next line without its end of line (libevent's evbuffer_readln).

        Returns None when no complete line is buffered (nothing is removed then). Styles:
        EOL_LF: "\\n". EOL_CRLF: "\\n" with an optional "\\r" before it. EOL_CRLF_STRICT: exactly
        "\\r\\n" (a lone "\\n" is data). EOL_NUL: "\\0". EOL_ANY: the first CR or LF and every CR
        or LF right after it — so, as in libevent, "\\r" at the end of the buffer ends a line,
        and a "\\n" arriving later then reads as an empty line; prefer EOL_CRLF for network input.
        Scanning starts from the front each call; bound line length with ``max_size``.
        """
        pos, eol_len = self.search_eol(eol_style)
        if pos < 0:
            return None
        line = self.read(pos)
        self.drain(eol_len)
        return line
