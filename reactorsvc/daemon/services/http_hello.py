"""http-hello: a small HTTP/1.1 responder that real clients (curl, wrk, ab) can drive.

Every GET answers ``200 OK`` with the configured ``body`` (text/plain, with Content-Length
and Date); HEAD answers the same headers without the body; any other method gets ``405``
with ``Allow: GET, HEAD``. Requests are framed by httptools (llhttp) through
``http_parser.RequestParser``; pipelined requests are answered in order, one response each.
Request bodies are read and dropped before the response is sent, up to ``max_body`` (else
413). ``Expect: 100-continue`` gets an interim ``100 Continue`` only for a request that will
be served: one that will be refused (405, 413) gets its final status at once, and the
connection closes (a refused request sent without Expect has its body read and dropped).

Connections: HTTP/1.1 is keep-alive unless the request says ``Connection: close``; HTTP/1.0
is keep-alive only with ``Connection: keep-alive``. A bad request gets its status (400, 408,
413, 414, 431, 501, 505) with ``Connection: close``. A connection is ended by a *lingering
close*: the response is flushed, the write side shut down (``write_eof``), and input is read
and dropped until the client closes (at most ``_LINGER_BYTES``, and ``_LINGER_SECONDS`` when
a timer is available), so the client is never reset before it has read the response.

Draining (the ``drain()`` hook, called by reactorsvc when the server stops or retires this
connection's listener): a keep-alive connection idle for ``drain_idle`` seconds (default
0.5) is closed at once, one idle for less once it has been; a request in flight, and those
already fully received behind it, are answered, the last with ``Connection: close``. Why not
close every idle connection at once: a client that has just read a response sends its next
request within microseconds, and a close that crosses it loses that request (the server
cannot know it is on the way); one idle for a while is not about to send.

Flow control: when the transport calls ``pause_writing`` the protocol stops reading
(``transport.pause_reading()``) and stops answering buffered requests, and goes on at
``resume_writing``: a client that sends requests but never reads the responses cannot make
the server's memory grow.

Timers, framework-neutral: taken from ``transport.get_extra_info("call_later")``, a callable
``call_later(delay_seconds, fn) -> handle`` (with ``.cancel()``) running ``fn()`` later in the
connection's thread. reactorsvc transports provide it; a plain asyncio transport does not, and
then there are no timeouts (wrap the transport to add one, as the tests do). One timer per
connection, re-armed lazily, watches one phase at a time: ``header_timeout`` from a request's
first byte (and from connection_made) to its complete head (408), ``body_timeout`` from the
head to the end of its body (408), ``keepalive_timeout`` while idle between requests (closed
without a word, since a 408 would race with the client's next request).

Thread-safety: one instance per connection; all methods run in that connection's thread
(asyncio's and reactorsvc's Protocol contract).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

import structlog

from reactorsvc.daemon.services.http_options import DEFAULTS, validate_options
from reactorsvc.daemon.services.http_parser import (
    END_OF_MESSAGE,
    REASONS,
    HttpError,
    RequestHead,
    RequestParser,
    date_line,
)

log = structlog.get_logger("reactorsvc.services.http_hello")

_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 20
_ALLOWED = ("GET", "HEAD")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_LINES = {s: b"HTTP/1.1 %d %s\r\n" % (s, r.encode("ascii")) for s, r in REASONS.items()}
_405_BODY = b"405 Method Not Allowed\n"
_405_HEADERS = (b"Allow: GET, HEAD\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: %d\r\n" % len(_405_BODY))
# Timer phases: what the one timer watches.
_IDLE, _HEAD, _BODY, _DRAIN = "keepalive", "header", "body", "drain"


class HttpHelloProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection of the http-hello service.

    Options (keyword-only; ``functools.partial(HttpHelloProtocol, **options)`` is the
    protocol factory), defaults in ``http_options.DEFAULTS``: ``body`` (str, UTF-8),
    ``max_request_line`` (bytes, else 414), ``max_header_size`` (bytes, else 431),
    ``max_body`` (bytes or None, else 413), ``header_timeout``, ``body_timeout``,
    ``keepalive_timeout`` (seconds or None). Bad values raise ServiceError (a ValueError).
    """

    validate_options = staticmethod(validate_options)

    def __init__(self, *, body: str | bytes = DEFAULTS["body"],
                 max_request_line: int = DEFAULTS["max_request_line"],
                 max_header_size: int = DEFAULTS["max_header_size"],
                 max_body: int | None = DEFAULTS["max_body"],
                 header_timeout: float | None = DEFAULTS["header_timeout"],
                 body_timeout: float | None = DEFAULTS["body_timeout"],
                 keepalive_timeout: float | None = DEFAULTS["keepalive_timeout"],
                 drain_idle: float = DEFAULTS["drain_idle"]) -> None:
        opts = validate_options(body, max_request_line, max_header_size, max_body,
                                header_timeout, body_timeout, keepalive_timeout, drain_idle)
        self._body: bytes = opts["body"]
        self._timeouts = {_HEAD: opts["header_timeout"], _BODY: opts["body_timeout"],
                          _IDLE: opts["keepalive_timeout"], _DRAIN: opts["drain_idle"]}
        self._parser = RequestParser(opts["max_request_line"], opts["max_header_size"],
                                     opts["max_body"])
        self._fixed_headers = (
            b"Server: reactorsvc\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\n" % len(self._body)
        )
        self._transport: asyncio.Transport | None = None
        self._call_later: Any = None
        self._timer: Any = None
        self._phase: str | None = None
        self._deadline = 0.0       # when the watched phase times out
        self._timer_due = 0.0      # when the armed timer fires (at or before _deadline)
        self._idle_since = 0.0     # when the connection last had nothing to do
        self._linger_timer: Any = None
        self._head: RequestHead | None = None
        self._writing_paused = False
        self._lingering = False
        self._draining = False
        self._linger_left = _LINGER_BYTES
        self.requests = 0  # responses sent (200, 405), for stats and tests

    # -- Protocol callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._call_later = transport.get_extra_info("call_later")
        self._idle_since = monotonic()
        self._watch(_HEAD)  # a new connection owes its first request line

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self._close()
            return
        parser = self._parser
        parser.feed(data)
        if (self._phase is _IDLE or self._phase is _DRAIN) and parser.request_started:
            self._watch(_HEAD)
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
        self._watch(None)  # the client is not reading: not a slow request (write_timeout's job)

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._lingering or self._transport is None:
            return
        self._transport.resume_reading()
        self._process()
        if not self._writing_paused and not self._lingering and self._phase is None:
            self._watch_next()

    def drain(self) -> None:
        """reactorsvc's drain hook: the server stops; end this connection without losing a
        request. Idle for ``drain_idle`` seconds: closed at once; idle for less: closed once
        it has been (a client that just had an answer is about to send its next request,
        and closing under it would lose that request). Otherwise the requests received are
        answered and the last response says ``Connection: close``."""
        self._draining = True
        if self._transport is not None and not self._lingering and self._parser.idle:
            self._close_when_idle()

    def _close_when_idle(self) -> None:
        due = self._idle_since + self._timeouts[_DRAIN]
        if due <= monotonic() or self._call_later is None:
            self._linger()
            return
        self._phase = _DRAIN
        self._arm(due)

    # -- request handling --------------------------------------------------

    def _process(self) -> None:
        """Answer queued requests in order until they run out or writing pauses."""
        parser = self._parser
        while not self._writing_paused and not self._lingering and self._transport is not None:
            try:
                event = parser.next_event()
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
        self._head = head
        if head.expect_continue and head.has_body and head.method not in _ALLOWED:
            # Refused whatever the body holds and the client waits before sending it: answer
            # now, neither invite the body nor wait for it (then the connection must close).
            self._head = None
            self.requests += 1
            self._write_response(405, _405_HEADERS + b"Connection: close\r\n", _405_BODY)
            self._linger()
            return
        if head.has_body:
            self._watch(_BODY)
            if head.expect_continue:
                self._transport.write(_CONTINUE)  # type: ignore[union-attr]

    def _respond(self) -> None:
        head = self._head
        assert head is not None and self._transport is not None
        self._head = None
        self.requests += 1
        keep_alive = head.keep_alive and not (
            self._draining and not self._parser.complete_requests_queued)
        if head.method in _ALLOWED:
            status, extra, body = 200, self._fixed_headers, self._body
        else:
            status, extra, body = 405, _405_HEADERS, _405_BODY
        if not keep_alive:
            extra += b"Connection: close\r\n"
        elif head.version < (1, 1):
            extra += b"Connection: keep-alive\r\n"
        self._write_response(status, extra, b"" if head.method == "HEAD" else body)
        if not keep_alive:
            self._linger()
        elif not self._writing_paused:
            self._watch_next()

    def _write_response(self, status: int, headers: bytes, body: bytes) -> None:
        self._transport.write(  # type: ignore[union-attr]
            _STATUS_LINES[status] + date_line() + headers + b"\r\n" + body)

    def _reject(self, exc: HttpError) -> None:
        """Answer a refused request with its status and end the connection."""
        log.debug("http_request_rejected", status=exc.status, detail=exc.detail,
                  peer=self._transport.get_extra_info("peername") if self._transport else None)
        self._send_error(exc.status, exc.detail)

    def _send_error(self, status: int, detail: str) -> None:
        body = f"{status} {REASONS[status]}: {detail}\n".encode("ascii", "replace")
        self._write_response(status, b"Content-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n" % len(body), body)
        self._linger()

    # -- ending a connection -----------------------------------------------

    def _linger(self) -> None:
        """Flush, shut down writing, drop input until the client closes (bounded)."""
        transport = self._transport
        assert transport is not None
        self._lingering = True
        self._watch(None)
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

    # -- the one timer -----------------------------------------------------

    def _watch_next(self) -> None:
        """After a response: the next request's head is due (begun) or awaited (idle)."""
        self._watch(_HEAD if self._parser.request_started else _IDLE)

    def _watch(self, phase: str | None) -> None:
        """Watch ``phase`` from now (None: nothing). The armed timer is kept and re-armed when
        it fires early, so a request costs no timer add/cancel pair; a timer due after the new
        deadline is replaced."""
        self._phase = phase
        timeout = self._timeouts.get(phase) if phase is not None else None
        if timeout is None or self._call_later is None:
            self._phase = None
            return
        now = monotonic()
        if phase is _IDLE:
            self._idle_since = now
        self._arm(now + timeout)

    def _arm(self, deadline: float) -> None:
        self._deadline = deadline
        if self._timer is not None and self._timer_due > deadline:
            self._timer.cancel()  # due too late for the new deadline: re-arm earlier
            self._timer = None
        if self._timer is None:
            self._timer_due = deadline
            self._timer = self._call_later(max(deadline - monotonic(), 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        phase = self._phase
        if phase is None or self._transport is None or self._lingering:
            return
        left = self._deadline - monotonic()
        if left > 0:
            self._timer_due = self._deadline
            self._timer = self._call_later(left, self._on_timer)
            return
        self._phase = None
        if phase is _DRAIN:
            self._linger()
            return
        if phase is _IDLE or (phase is _HEAD and not self._parser.request_started):
            self._close()  # nothing of a request received: close without a word
            return
        limit = self._timeouts[phase]
        what = "request header" if phase is _HEAD else "request body"
        log.debug("http_request_timeout", phase=phase, timeout=limit)
        self._send_error(408, f"{what} not received within {limit:g} s")

    def _cancel_timers(self) -> None:
        self._phase = None
        for timer in (self._timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._linger_timer = None
