"""http-hello: a small HTTP/1.1 responder that real clients (curl, wrk, ab) can drive.

Every GET answers ``200 OK`` with the configured ``body`` (text/plain, with
Content-Length); HEAD answers the same headers without the body; any other
method gets ``405`` with ``Allow: GET, HEAD``. Requests are parsed incrementally
by ``http_parser.RequestParser``; pipelined requests are answered in order, one
response each. Request bodies (Content-Length or chunked) are read and dropped
before the response is sent; ``Expect: 100-continue`` gets an interim
``100 Continue``. Other transfer codings get 501 (see http_parser).

Connections: HTTP/1.1 is keep-alive unless the request says ``Connection:
close``; HTTP/1.0 is keep-alive only with ``Connection: keep-alive``. A bad
request gets its status (400, 414, 431, 501, 505) with ``Connection: close``.
A connection is ended by a *lingering close*: the response is flushed, the
write side shut down (``write_eof``), and input is read and dropped until the
client closes (at most ``_LINGER_BYTES``, and ``_LINGER_SECONDS`` when a timer
is available), so the client is never reset before it has read the response.

Flow control: when the transport calls ``pause_writing`` the protocol stops
reading (``transport.pause_reading()``) and stops answering buffered requests,
and goes on at ``resume_writing``: a client that sends requests but never reads
the responses cannot make the server's memory grow.

Timers, framework-neutral: the header timeout needs a timer, which the protocol
takes from ``transport.get_extra_info("call_later")``: a callable
``call_later(delay_seconds, fn) -> handle`` (the handle has ``.cancel()``) that
runs ``fn()`` later in the connection's own thread. reactorsvc transports
provide it; a plain asyncio transport does not, and then there is no header
timeout and no linger time bound (wrap the transport to add one, as the tests
do with ``loop.call_later``). The timer runs while a request line and header
section are awaited: from connection_made, and again after each response. When
it fires with part of a request received, the answer is ``408`` and the
connection closes; an idle connection (nothing of a next request received) is
closed silently, since a 408 would race with the client's next request, so
``header_timeout`` is also the keep-alive idle limit.

Thread-safety: one instance per connection; all methods run in that
connection's thread (asyncio's and reactorsvc's Protocol contract).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import structlog

from reactorsvc.daemon.services import ServiceError
from reactorsvc.daemon.services.http_parser import (
    END_OF_MESSAGE,
    REASONS,
    HttpError,
    RequestHead,
    RequestParser,
)

log = structlog.get_logger("reactorsvc.services.http_hello")

_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 20
_ALLOWED = ("GET", "HEAD")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_date_cache: tuple[int, bytes] = (0, b"")


def _date_line() -> bytes:
    """The Date header line, formatted at most once a second (benign race across threads)."""
    global _date_cache
    now = int(time.time())
    second, line = _date_cache
    if second != now:
        line = f"Date: {email.utils.formatdate(now, usegmt=True)}\r\n".encode("ascii")
        _date_cache = (now, line)
    return line


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError(f"{name} must be an integer, not {type(value).__name__}", name)
    if value < 1:
        raise ServiceError(f"{name} must be >= 1, got {value}", name)
    return value


def validate_options(
    body: str | bytes = "Hello, world!\n",
    max_request_line: int = 8192,
    max_header_size: int = 65536,
    header_timeout: float | None = 10.0,
) -> dict[str, Any]:
    """Check http-hello's options; return them normalised or raise ServiceError naming one."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        raise ServiceError(f"body must be a string, not {type(body).__name__}", "body")
    if header_timeout is not None:
        if isinstance(header_timeout, bool) or not isinstance(header_timeout, (int, float)):
            raise ServiceError(
                f"header_timeout must be a number of seconds or null, not "
                f"{type(header_timeout).__name__}",
                "header_timeout",
            )
        if not 0 < header_timeout < float("inf"):
            raise ServiceError(
                f"header_timeout must be > 0, got {header_timeout}", "header_timeout"
            )
        header_timeout = float(header_timeout)
    return {
        "body": body,
        "max_request_line": _positive_int("max_request_line", max_request_line),
        "max_header_size": _positive_int("max_header_size", max_header_size),
        "header_timeout": header_timeout,
    }


class HttpHelloProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection of the http-hello service.

    Options (keyword-only; ``functools.partial(HttpHelloProtocol, **options)``
    is the protocol factory): ``body`` (str, UTF-8, default "Hello, world!\\n"),
    ``max_request_line`` (bytes, default 8192, else 414), ``max_header_size``
    (bytes, default 65536, else 431), ``header_timeout`` (seconds or None,
    default 10, else 408). Bad values raise ServiceError (a ValueError).
    """

    validate_options = staticmethod(validate_options)

    def __init__(
        self,
        *,
        body: str | bytes = "Hello, world!\n",
        max_request_line: int = 8192,
        max_header_size: int = 65536,
        header_timeout: float | None = 10.0,
    ) -> None:
        opts = validate_options(body, max_request_line, max_header_size, header_timeout)
        self._body: bytes = opts["body"]
        self._header_timeout: float | None = opts["header_timeout"]
        self._parser = RequestParser(opts["max_request_line"], opts["max_header_size"])
        self._fixed_headers = (
            b"Server: reactorsvc\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\n" % len(self._body)
        )
        self._transport: asyncio.Transport | None = None
        self._call_later: Any = None
        self._header_timer: Any = None
        self._linger_timer: Any = None
        self._head: RequestHead | None = None
        self._writing_paused = False
        self._lingering = False
        self._linger_left = _LINGER_BYTES
        self.requests = 0  # responses sent (200, 405), for stats and tests

    # -- Protocol callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._call_later = transport.get_extra_info("call_later")
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self._close()
            return
        self._parser.feed(data)
        self._process()

    def eof_received(self) -> bool:
        # Every complete request has been answered by now; a partial one never will be.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._transport = None

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._lingering or self._transport is None:
            return
        self._transport.pause_reading()
        # The client is not reading; its slowness is not a slow header.
        self._cancel_header_timer()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._lingering or self._transport is None:
            return
        self._transport.resume_reading()
        self._process()
        if not self._writing_paused and self._parser.in_head:
            self._arm_header_timer()

    # -- request handling --------------------------------------------------

    def _process(self) -> None:
        """Answer buffered requests in order until data runs out or writing pauses."""
        while not self._writing_paused and not self._lingering and self._transport is not None:
            try:
                event = self._parser.next_event()
            except HttpError as exc:
                self._reject(exc)
                return
            if event is None:
                return
            if event is END_OF_MESSAGE:
                self._respond()
            else:
                self._on_head(event)  # type: ignore[arg-type]

    def _on_head(self, head: RequestHead) -> None:
        self._cancel_header_timer()
        self._head = head
        if head.expect_continue and head.has_body:
            self._transport.write(_CONTINUE)  # type: ignore[union-attr]

    def _respond(self) -> None:
        head = self._head
        assert head is not None and self._transport is not None
        self._head = None
        self.requests += 1
        if head.method in _ALLOWED:
            status, extra, body = 200, self._fixed_headers, self._body
        else:
            body = b"405 Method Not Allowed\n"
            status = 405
            extra = (
                b"Allow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\n" % len(body)
            )
        if not head.keep_alive:
            extra += b"Connection: close\r\n"
        elif head.version < (1, 1):
            extra += b"Connection: keep-alive\r\n"
        status_line = b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status].encode("ascii"))
        payload = b"" if head.method == "HEAD" else body
        self._transport.write(status_line + _date_line() + extra + b"\r\n" + payload)
        if not head.keep_alive:
            self._linger()
        elif self._parser.in_head and not self._writing_paused:
            self._arm_header_timer()

    def _reject(self, exc: HttpError) -> None:
        """Answer a refused request with its status and end the connection."""
        log.debug(
            "http_request_rejected",
            status=exc.status,
            detail=exc.detail,
            peer=self._transport.get_extra_info("peername") if self._transport else None,
        )
        self._send_error(exc.status, exc.detail)

    def _send_error(self, status: int, detail: str) -> None:
        assert self._transport is not None
        body = f"{status} {REASONS[status]}: {detail}\n".encode("ascii", "replace")
        status_line = b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status].encode("ascii"))
        headers = (
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        self._transport.write(status_line + _date_line() + headers + body)
        self._linger()

    # -- ending a connection -----------------------------------------------

    def _linger(self) -> None:
        """Flush, shut down writing, drop input until the client closes (bounded)."""
        transport = self._transport
        assert transport is not None
        self._lingering = True
        self._cancel_header_timer()
        if not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        transport.resume_reading()  # draining the client's data is what lingering is for
        if self._call_later is not None:
            self._linger_timer = self._call_later(_LINGER_SECONDS, self._close)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- the header timer --------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if self._call_later is not None and self._header_timeout is not None:
            self._header_timer = self._call_later(self._header_timeout, self._on_header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self._transport is None or self._lingering or not self._parser.in_head:
            return
        if self._parser.request_started:
            self._send_error(408, f"request header not received within {self._header_timeout:g} s")
        else:
            self._close()  # an idle keep-alive connection: close without a word

    def _cancel_timers(self) -> None:
        self._cancel_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
