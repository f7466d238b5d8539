"""HTTP/1.1 request framing for http-hello and the admin endpoint, on httptools (llhttp).

llhttp (Node.js's parser, what uvicorn uses through httptools) does the framing and rejects
the request-smuggling classics RFC 9112 forbids: an overlong or overflowing Content-Length,
conflicting Content-Lengths, Content-Length with Transfer-Encoding, bare LF in chunk framing,
spaces before a chunk size, control bytes in chunk extensions, obs-fold. This module adds what
llhttp leaves to its user — limits, and the rules of an origin server:

- ``max_request_line`` (414) and ``max_header_size`` (431), counted as the bytes of the
  request line and of the header section (line ends and the closing empty line included);
  a line still arriving is bounded too, by both limits together;
- ``max_body`` (413), checked on Content-Length at the end of the head, before any body
  byte is read, and on the decoded chunked bytes as they arrive;
- exactly one Host in HTTP/1.1 (400); a major version other than 1 (505); a transfer coding
  other than chunked (501); Transfer-Encoding in HTTP/1.0 (400).

The bound on a head still arriving is ``max_request_line + max_header_size`` bytes: httptools
joins the pieces of a header line by concatenation (quadratic in the pieces of one line), so
that bound is also what keeps a client sending one byte at a time cheap.

``feed(data)`` parses at once (llhttp is not resumable mid-callback); the events it produces
queue up and ``next_event()`` hands them out in order: a ``RequestHead`` once a head is
complete, ``END_OF_MESSAGE`` once that request's body has been read and dropped, ``None`` when
more bytes are needed. A refused request raises ``HttpError`` from ``next_event()`` after the
events before it; the parser is dead afterwards (it raises the same error again). What is
queued is bounded by what one ``feed()`` brought (callers pause reading while they cannot
answer). An ``Upgrade`` or ``CONNECT`` request ends the stream: its head and end come out
with ``keep_alive`` False, and the bytes after it are not parsed.

Not thread-safe: one parser belongs to one connection, used from its thread.
"""

from __future__ import annotations

import time
from collections import deque
from email.utils import formatdate

import httptools

__all__ = ["END_OF_MESSAGE", "REASONS", "HttpError", "RequestHead", "RequestParser", "date_line"]

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

_date_cache: tuple[int, bytes] = (0, b"")


def date_line() -> bytes:
    """The ``Date:`` header line (CRLF included), formatted at most once a second.

    Any thread: the cache is one tuple replaced whole, so a reader sees an old or a new pair,
    never a mix; two threads formatting the same second write equal values."""
    global _date_cache
    now = int(time.time())
    second, line = _date_cache
    if second != now:
        line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")
        _date_cache = (now, line)
    return line


class HttpError(Exception):
    """A request the server must refuse: ``status`` (int), ``reason``, ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {REASONS[status]}: {detail}")
        self.status = status
        self.reason = REASONS[status]
        self.detail = detail


class RequestHead:
    """A parsed request line and header section.

    ``headers``: (lower-cased name, value) pairs in arrival order, as str (latin-1);
    ``keep_alive``: the HTTP/1.0 and 1.1 Connection rules (llhttp's); ``has_body``:
    Content-Length > 0 or chunked; ``content_length``: the declared length or None.
    """

    __slots__ = ("method", "target", "version", "headers", "keep_alive", "expect_continue",
                 "has_body", "content_length")

    def __init__(self, method: str, target: str, version: tuple[int, int],
                 headers: list[tuple[str, str]], keep_alive: bool, expect_continue: bool,
                 has_body: bool, content_length: int | None) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.has_body = has_body
        self.content_length = content_length

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target} HTTP/{self.version[0]}.{self.version[1]}>"


class _EndOfMessage:
    """Sentinel type of END_OF_MESSAGE."""

    def __repr__(self) -> str:
        return "END_OF_MESSAGE"


END_OF_MESSAGE = _EndOfMessage()


def _status_of(exc: httptools.HttpParserError) -> HttpError:
    """llhttp's refusal as our status: 505 for a version, 501 for a transfer coding, else 400."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httptools.HttpParserCallbackError) and isinstance(exc.__context__, HttpError):
        return exc.__context__
    if text == "Invalid HTTP version":
        return HttpError(505, "only HTTP/1.x is supported")
    if text == "Request has invalid `Transfer-Encoding`":
        return HttpError(501, "only the chunked transfer coding is supported")
    return HttpError(400, text)


class RequestParser:
    """Incremental parser of pipelined HTTP/1.x requests on one connection.

    ``max_request_line``: longest request line in bytes, line end excluded (414).
    ``max_header_size``: largest header section in bytes, line ends and the closing empty
    line included (431). ``max_body``: largest request body in bytes (413); None: no limit.
    """

    def __init__(self, max_request_line: int = 8192, max_header_size: int = 65536,
                 max_body: int | None = None) -> None:
        self._max_line = max_request_line
        self._max_header = max_header_size
        self._max_body = max_body
        self._parser = httptools.HttpRequestParser(self)
        self._events: deque = deque()
        self._error: HttpError | None = None
        self._done = False         # after an Upgrade/CONNECT: nothing more is parsed
        self._started = False      # a request's first byte arrived; its head is not complete
        self._in_body = False      # a head is complete, its message is not
        self._head_bytes = 0       # bytes fed while a head was incomplete (the in-progress bound)
        self._url: list[bytes] = []
        self._url_len = 0
        self._headers: list[tuple[str, str]] = []
        self._header_len = 2       # the closing empty line
        self._body_len = 0
        self._pending_ends = 0     # END_OF_MESSAGE events queued

    # -- what the protocol asks ---------------------------------------------------------------

    @property
    def in_head(self) -> bool:
        """No request body is being read: the next bytes belong to a request head."""
        return self._started or not self._in_body

    @property
    def request_started(self) -> bool:
        """Part of a request head has arrived (not yet complete)."""
        return self._started

    @property
    def idle(self) -> bool:
        """Nothing of a next request received and nothing queued: a keep-alive pause."""
        return not self._started and not self._in_body and not self._events

    @property
    def complete_requests_queued(self) -> int:
        """Requests fully received and not yet handed out by next_event()."""
        return self._pending_ends

    def feed(self, data: bytes) -> None:
        """Parse ``data`` now; its events (or the error) wait for next_event()."""
        if self._error is not None or self._done:
            return
        started_before = self._started
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._done = True  # the head and its end are queued; what follows is not HTTP/1.1
        except httptools.HttpParserError as exc:
            if not self._done:  # after a Connection: close request, llhttp refuses what follows
                self._error = _status_of(exc)
            return
        if self._started:
            self._head_bytes = self._head_bytes + len(data) if started_before else len(data)
            if self._head_bytes > self._max_line + self._max_header:
                self._refuse_incomplete_head()

    def next_event(self) -> RequestHead | _EndOfMessage | None:
        if self._events:
            event = self._events.popleft()
            if event is END_OF_MESSAGE:
                self._pending_ends -= 1
            return event
        if self._error is not None:
            raise self._error
        return None

    def _refuse_incomplete_head(self) -> None:
        line = len(self._parser.get_method() or b"") + self._url_len + 10
        if self._headers or (self._url_len and self._head_bytes > line + 2):
            self._error = HttpError(431, f"request header section over {self._max_header} bytes")
        else:
            self._error = HttpError(414, f"request line over {self._max_line} bytes")

    # -- llhttp's callbacks (run inside feed) ----------------------------------------------

    def on_message_begin(self) -> None:
        self._started = True
        self._head_bytes = 0
        self._url = []
        self._url_len = 0
        self._headers = []
        self._header_len = 2
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_len += len(url)
        line = len(self._parser.get_method()) + self._url_len + 10  # 2 spaces, "HTTP/1.1"
        if line > self._max_line:
            raise HttpError(414, f"request line over {self._max_line} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_len += len(name) + len(value) + 4
        if self._header_len > self._max_header:
            raise HttpError(431, f"request header section over {self._max_header} bytes")
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._started = False
        self._events.append(self._make_head())
        self._in_body = True

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._max_body is not None and self._body_len > self._max_body:
            raise HttpError(413, f"request body over {self._max_body} bytes")

    def on_message_complete(self) -> None:
        self._in_body = False
        self._done = not self._parser.should_keep_alive()
        self._events.append(END_OF_MESSAGE)
        self._pending_ends += 1

    def _make_head(self) -> RequestHead:
        parser = self._parser
        major, _, minor = parser.get_http_version().partition(".")
        version = (int(major), int(minor or 0))
        if version[0] != 1:
            raise HttpError(505, f"HTTP/{major}.{minor} is not supported")
        hosts = chunked = expect = 0
        content_length = None
        for name, value in self._headers:
            if name == "host":
                hosts += 1
            elif name == "content-length":
                content_length = int(value)  # llhttp checked: digits, no overflow, no conflict
            elif name == "transfer-encoding":  # llhttp checked that chunked comes last
                if value.strip().lower() != "chunked":
                    raise HttpError(501, f"transfer coding {value!r}: only chunked is supported")
                chunked = 1
            elif name == "expect":
                expect = value.lower() == "100-continue"
        if chunked and version < (1, 1):  # RFC 9112 §6.1: faulty framing
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if version == (1, 1) and hosts != 1:
            raise HttpError(400, f"an HTTP/1.1 request needs exactly one Host header, got {hosts}")
        if self._max_body is not None and content_length is not None and content_length > self._max_body:
            raise HttpError(413, f"Content-Length {content_length} over {self._max_body} bytes")
        return RequestHead(
            parser.get_method().decode("ascii"), b"".join(self._url).decode("latin-1"), version,
            self._headers, parser.should_keep_alive() and not parser.should_upgrade(),
            bool(expect), bool(chunked or content_length), content_length)
