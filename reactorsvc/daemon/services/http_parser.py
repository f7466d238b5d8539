"""An incremental HTTP/1.1 request parser for the http-hello service.

Owns the byte buffer of one connection and turns it into a stream of events:
``feed(data)`` appends bytes, then ``next_event()`` returns, in order,

- a ``RequestHead`` once a request line and its header section are complete,
- ``END_OF_MESSAGE`` once that request's body (if any) has been read and dropped,
- ``None`` when more bytes are needed.

A malformed or oversized request raises ``HttpError`` (status, reason, detail);
the parser is dead afterwards and raises the same error again.

Work is O(n) in the bytes fed, however they are split: a line is searched for
its end only from where the previous search stopped (``_scan``), complete lines
are removed from the buffer's front (O(1) for a bytearray), and size limits are
checked on every call, so a client sending one byte at a time costs O(1) per
byte and can never grow the buffer past the limits.

Framing (RFC 9112): CRLF or bare LF ends a line; empty lines before a request
line are skipped; obs-fold, a space before a header colon, control characters,
an HTTP/1.1 request without exactly one Host, conflicting Content-Length values
and Content-Length together with Transfer-Encoding are 400s. ``Transfer-Encoding:
chunked`` request bodies are decoded (and dropped), trailers included; any other
transfer coding is a 501. A major version other than 1 is a 505.

Not thread-safe: one parser belongs to one connection, used from its thread.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_CHAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# A chunk-size line is a hex number plus optional extensions; 1 KiB is ample.
_MAX_CHUNK_LINE = 1024

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    """A request the server must refuse: ``status`` (int), ``reason``, ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {REASONS[status]}: {detail}")
        self.status = status
        self.reason = REASONS[status]
        self.detail = detail


@dataclass
class RequestHead:
    """A parsed request line and header section.

    ``headers`` keeps (lower-cased name, value) pairs in arrival order;
    ``keep_alive`` applies the HTTP/1.0 and 1.1 Connection rules;
    ``has_body`` says whether a body follows (Content-Length > 0 or chunked).
    """

    method: str
    target: str
    version: tuple[int, int]
    headers: list[tuple[str, str]] = field(default_factory=list)
    keep_alive: bool = True
    expect_continue: bool = False
    has_body: bool = False


class _EndOfMessage:
    """Sentinel type of END_OF_MESSAGE."""

    def __repr__(self) -> str:
        return "END_OF_MESSAGE"


END_OF_MESSAGE = _EndOfMessage()


class _State(enum.Enum):
    REQUEST_LINE = "request line"
    HEADERS = "headers"
    BODY = "body"
    CHUNK_SIZE = "chunk size"
    CHUNK_DATA = "chunk data"
    CHUNK_CRLF = "chunk end"
    TRAILERS = "trailers"
    END = "end"


class RequestParser:
    """Incremental parser of pipelined HTTP/1.x requests on one connection.

    ``max_request_line``: longest request line in bytes, line end excluded (414).
    ``max_header_size``: largest header section in bytes, line ends and the
    closing empty line included (431); chunked trailers get the same limit.
    """

    def __init__(self, max_request_line: int = 8192, max_header_size: int = 65536) -> None:
        self._max_line = max_request_line
        self._max_header = max_header_size
        self._buf = bytearray()
        self._scan = 0  # buffer offset up to which no line end was found
        self._state = _State.REQUEST_LINE
        self._error: HttpError | None = None
        self._reset_request()

    def _reset_request(self) -> None:
        self._header_bytes = 0
        self._skipped = 0
        self._head: RequestHead | None = None
        self._remaining = 0

    @property
    def buffered(self) -> int:
        """Bytes held: unparsed input (bodies are dropped as they arrive)."""
        return len(self._buf)

    @property
    def in_head(self) -> bool:
        """True while waiting for (the rest of) a request line or header section."""
        return self._state in (_State.REQUEST_LINE, _State.HEADERS)

    @property
    def request_started(self) -> bool:
        """True once any byte of the next request (even a blank line) has arrived."""
        return self._state is not _State.REQUEST_LINE or bool(self._buf) or self._skipped > 0

    def feed(self, data: bytes) -> None:
        """Append received bytes; parse them with ``next_event()``."""
        if self._error is None:
            self._buf += data

    def next_event(self) -> RequestHead | _EndOfMessage | None:
        """Return the next event, or None if more data is needed; raise HttpError."""
        if self._error is not None:
            raise self._error
        try:
            return self._step()
        except HttpError as exc:
            self._error = exc
            self._buf.clear()
            raise

    def _step(self) -> RequestHead | _EndOfMessage | None:
        while True:
            state = self._state
            if state is _State.REQUEST_LINE:
                line = self._take_line(self._max_line + 2, 414, "request line too long")
                if line is None:
                    return None
                if line:
                    self._head = self._parse_request_line(line)
                    self._state = _State.HEADERS
                else:
                    self._skip_blank_line()
            elif state is _State.HEADERS or state is _State.TRAILERS:
                line = self._take_header_line()
                if line is None:
                    return None
                if line:
                    self._add_field(line)
                elif state is _State.HEADERS:
                    return self._finish_head()
                else:
                    self._state = _State.END
            elif state is _State.END:
                self._state = _State.REQUEST_LINE
                self._reset_request()
                return END_OF_MESSAGE
            elif not self._step_body(state):
                return None

    def _step_body(self, state: _State) -> bool:
        """Advance through a body; False when more data is needed."""
        if state is _State.BODY or state is _State.CHUNK_DATA:
            dropped = min(self._remaining, len(self._buf))
            self._consume(dropped)
            self._remaining -= dropped
            if self._remaining:
                return False
            self._state = _State.END if state is _State.BODY else _State.CHUNK_CRLF
        elif state is _State.CHUNK_SIZE:
            line = self._take_line(_MAX_CHUNK_LINE, 400, "chunk size line too long")
            if line is None:
                return False
            size = _parse_chunk_size(line)
            self._remaining = size
            self._state = _State.CHUNK_DATA if size else _State.TRAILERS
            self._header_bytes = 0  # trailers get a header section's limit of their own
        else:  # CHUNK_CRLF: the line end that closes a chunk's data
            line = self._take_line(2, 400, "chunk data not followed by CRLF")
            if line is None:
                return False
            if line:
                raise HttpError(400, "chunk data longer than its size")
            self._state = _State.CHUNK_SIZE
        return True

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._scan = 0

    def _take_line(self, limit: int, status: int, detail: str) -> bytes | None:
        """Remove and return one line without its end, or None if incomplete.

        ``limit`` bounds the raw line, line end included; exceeding it (even
        before the line is complete) raises HttpError(status).
        """
        nl = self._buf.find(b"\n", self._scan)
        if nl < 0:
            self._scan = len(self._buf)
            if self._scan >= limit:
                raise HttpError(status, detail)
            return None
        if nl + 1 > limit:
            raise HttpError(status, detail)
        end = nl - 1 if nl and self._buf[nl - 1] == 0x0D else nl
        line = bytes(self._buf[:end])
        self._consume(nl + 1)
        if b"\r" in line:
            raise HttpError(400, "bare CR in a line")
        return line

    def _take_header_line(self) -> bytes | None:
        before = len(self._buf)
        limit = self._max_header - self._header_bytes
        line = self._take_line(limit, 431, "header section too large")
        if line is not None:
            self._header_bytes += before - len(self._buf)
        return line

    def _skip_blank_line(self) -> None:
        # RFC 9112 2.2: ignore empty lines before a request line, but not forever.
        self._skipped += 1
        if self._skipped > 4:
            raise HttpError(400, "too many empty lines before the request line")

    def _parse_request_line(self, line: bytes) -> RequestHead:
        if len(line) > self._max_line:
            raise HttpError(414, "request line too long")
        parts = line.split(b" ")
        if len(parts) != 3:
            raise HttpError(400, "request line is not 'METHOD TARGET HTTP/x.y'")
        method, target, version = parts
        if not _TOKEN.fullmatch(method):
            raise HttpError(400, "invalid method")
        if not _TARGET.fullmatch(target):
            raise HttpError(400, "invalid request target")
        match = _VERSION.fullmatch(version)
        if not match:
            raise HttpError(400, "invalid HTTP version")
        major, minor = int(match[1]), int(match[2])
        if major != 1:
            raise HttpError(505, f"HTTP/{major}.{minor} is not supported")
        return RequestHead(method.decode("ascii"), target.decode("ascii"), (major, minor))

    def _add_field(self, line: bytes) -> None:
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding in a header")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HttpError(400, "invalid header field name")
        value = value.strip(b" \t")
        if _BAD_VALUE_CHAR.search(value):
            raise HttpError(400, "control character in a header value")
        if self._state is _State.HEADERS:
            assert self._head is not None
            self._head.headers.append((name.decode("ascii").lower(), value.decode("latin-1")))

    def _finish_head(self) -> RequestHead:
        head = self._head
        assert head is not None
        framing = _framing(head)
        if framing == "chunked":
            self._state = _State.CHUNK_SIZE
            head.has_body = True
        elif framing:
            self._remaining = framing
            self._state = _State.BODY
            head.has_body = True
        else:
            self._state = _State.END
        return head


def _header_values(head: RequestHead, name: str) -> list[str]:
    return [value for key, value in head.headers if key == name]


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def _framing(head: RequestHead) -> int | str:
    """Check Host/Connection/Expect; return the body length or "chunked"."""
    hosts = _header_values(head, "host")
    if len(hosts) > 1 or (head.version >= (1, 1) and not hosts):
        raise HttpError(400, "an HTTP/1.1 request needs exactly one Host header")
    connection = _tokens(_header_values(head, "connection"))
    if head.version >= (1, 1):
        head.keep_alive = "close" not in connection
        expect = _header_values(head, "expect")
        head.expect_continue = [e.lower() for e in expect] == ["100-continue"]
    else:
        head.keep_alive = "keep-alive" in connection and "close" not in connection
    coding_values = _header_values(head, "transfer-encoding")
    codings = _tokens(coding_values)
    lengths = [t.strip() for v in _header_values(head, "content-length") for t in v.split(",")]
    if coding_values:
        if not codings:
            raise HttpError(400, "empty Transfer-Encoding")
        if lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if head.version < (1, 1):
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if codings != ["chunked"]:
            raise HttpError(501, f"transfer coding {', '.join(codings)!r} is not supported")
        return "chunked"
    if not lengths:
        return 0
    if any(not v.isdigit() or not v.isascii() for v in lengths) or len(set(lengths)) != 1:
        raise HttpError(400, "invalid Content-Length")
    return int(lengths[0])


def _parse_chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip(b" \t")
    if not _HEX.fullmatch(size):
        raise HttpError(400, "invalid chunk size")
    return int(size, 16)
