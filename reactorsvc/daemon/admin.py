"""The admin endpoint: GET /healthz, /metrics (Prometheus text format), /debug/events.

Served by the framework itself, on its own listener in the supervisor's loop. `source` is
anything with `stats() -> dict`, `draining: bool` and `bases() -> [(name, EventBase)]` (the
daemon's Server). Requests are framed by httptools through `services.http_parser` and
answered in order, keep-alive (HTTP/1.1), each response with `Date`; a method other than GET
or HEAD gets 405 with `Allow`; with `Expect: 100-continue` at once (no `100 Continue`, no
waiting for the body; the connection closes). No request gets a `100 Continue`. While `source.draining`, every response says `Connection: close`, and
the `drain()` hook (the Server calls it when the stop begins) closes idle connections.

Bounds (keyword options of AdminProtocol, defaults below): `header_timeout` for a request
head (408), `keepalive_timeout` between requests (closed), `write_timeout` for a client that
does not read (aborted); flow control: above the transport's write-buffer high mark the
protocol pauses reading and stops answering until `resume_writing`.

Thread-safety: one instance per connection; every method runs in the supervisor's thread.
"""

from __future__ import annotations

import io
import time
from typing import Any

from .metrics import render_metrics
from .services.http_parser import END_OF_MESSAGE, REASONS, HttpError, RequestParser, date_line

_TEXT = "text/plain; charset=utf-8"
_ALLOW = "GET, HEAD"
# drain() closes a connection only once it has been idle this long: closing one the instant
# its client sends (a fresh connection whose request is still on the way) would reset that
# request (http-hello's drain_idle, for the same reason).
_DRAIN_IDLE = 0.5


def _response(status: int, body: bytes, ctype: str, keep_alive: bool, send_body: bool = True,
              extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n")
    return head.encode("ascii") + date_line() + b"\r\n" + (body if send_body else b"")


class AdminProtocol:
    """One admin connection. asyncio-compatible Protocol; runs in the supervisor's thread."""

    def __init__(self, source: Any, *, header_timeout: float = 10.0,
                 keepalive_timeout: float = 30.0, write_timeout: float = 10.0) -> None:
        self._source = source
        self._parser = RequestParser(max_request_line=4096, max_header_size=16384,
                                     max_body=16384)
        self._timeouts = (header_timeout, keepalive_timeout, write_timeout)
        self._transport: Any = None
        self._call_later: Any = None
        self._timer: Any = None
        self._head = None
        self._paused = False
        self._last_input = time.monotonic()

    def connection_made(self, transport) -> None:
        self._transport = transport
        self._last_input = time.monotonic()
        self._call_later = transport.get_extra_info("call_later")
        self._arm(self._timeouts[0], self._on_read_timeout)

    def data_received(self, data: bytes) -> None:
        self._last_input = time.monotonic()
        self._parser.feed(data)
        self._process()

    def _process(self) -> None:
        try:
            while not self._paused and self._transport is not None:
                event = self._parser.next_event()
                if event is None:
                    break
                if event is END_OF_MESSAGE:
                    self._answer(self._head)
                elif event.method not in ("GET", "HEAD") and event.expect_continue:
                    self._refuse(405, b"only GET and HEAD\n", f"Allow: {_ALLOW}\r\n")
                else:
                    self._head = event
        except HttpError as exc:
            self._refuse(exc.status, f"{exc.detail}\n".encode())
            return
        if self._transport is not None and not self._paused:
            started = self._parser.request_started
            self._arm(self._timeouts[0] if started else self._timeouts[1], self._on_read_timeout)

    def _refuse(self, status: int, body: bytes, extra: str = "") -> None:
        self._transport.write(_response(status, body, _TEXT, False, extra=extra))
        self._transport.close()
        self._transport = None

    def _answer(self, head) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status, body, ctype, extra = self._route(head.method, head.target.split("?", 1)[0])
        keep_alive = head.keep_alive and not self._source.draining
        transport.write(_response(status, body, ctype, keep_alive, head.method != "HEAD", extra))
        if not keep_alive:
            transport.close()
            self._transport = None

    def _route(self, method: str, path: str) -> tuple[int, bytes, str, str]:
        if method not in ("GET", "HEAD"):
            return 405, b"only GET and HEAD\n", _TEXT, f"Allow: {_ALLOW}\r\n"
        src = self._source
        if path == "/healthz":
            if src.draining:
                return 503, b"draining\n", _TEXT, ""
            return 200, b"ok\n", _TEXT, ""
        if path == "/metrics":
            # A source may render itself (the master of `processes: N`, with process labels).
            render = getattr(src, "render_metrics", None)
            body = (render() if render is not None else render_metrics(src.stats(), src.draining)).encode()
            return 200, body, "text/plain; version=0.0.4; charset=utf-8", ""
        if path == "/debug/events":
            buf = io.StringIO()
            for name, base in src.bases():
                buf.write(f"== {name} ==\n")
                try:
                    base.dump_events(buf)
                except Exception as exc:  # a base freed meanwhile (worker replaced)
                    buf.write(f"  unavailable: {exc}\n")
            return 200, buf.getvalue().encode(), _TEXT, ""
        return 404, f"no such path: {path}\n".encode(), _TEXT, ""

    def drain(self) -> None:
        """The server stops: a connection idle for _DRAIN_IDLE closes now, one idle for less
        when it gets there; a busy one after its answer (which says Connection: close)."""
        if self._transport is None or not self._parser.idle or self._paused:
            return
        idle_for = time.monotonic() - self._last_input
        if idle_for >= _DRAIN_IDLE:
            self._transport.close()
            self._transport = None
        else:  # the read timer closes it unless a request starts meanwhile
            self._arm(_DRAIN_IDLE - idle_for, self._on_read_timeout)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._arm(None, None)

    def pause_writing(self) -> None:
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()
            self._arm(self._timeouts[2], self._on_write_timeout)

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None:
            self._transport.resume_reading()
            self._process()

    # -- the one timer (reads or writes, never both) -------------------------------------------

    def _arm(self, delay: float | None, fn: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if delay is not None and self._call_later is not None and self._transport is not None:
            self._timer = self._call_later(delay, fn)

    def _on_read_timeout(self) -> None:
        self._timer = None
        if self._transport is None:
            return
        if self._parser.request_started:
            self._refuse(408, b"request header not received in time\n")
        else:
            self._transport.close()
            self._transport = None

    def _on_write_timeout(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.abort()  # the client stopped reading: nothing more can reach it
            self._transport = None
