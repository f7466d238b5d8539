"""The admin endpoint: GET /healthz, /metrics (Prometheus text format), /debug/events.

Served by the framework itself, on its own listener in the supervisor's loop. `source` is
anything with `stats() -> dict`, `draining: bool` and `bases() -> [(name, EventBase)]` (the
daemon's Server). Each request is answered and the connection kept alive (HTTP/1.1).
"""

from __future__ import annotations

import io
from typing import Any

from .metrics import render_metrics
from .services.http_parser import END_OF_MESSAGE, HttpError, RequestParser

def _response(status: int, reason: str, body: bytes, ctype: str, keep_alive: bool,
              send_body: bool = True) -> bytes:
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode("ascii") + (body if send_body else b"")


class AdminProtocol:
    """One admin connection. asyncio-compatible Protocol; runs in the supervisor's thread."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._parser = RequestParser(max_request_line=4096, max_header_size=16384)
        self._transport = None
        self._head = None

    def connection_made(self, transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (event := self._parser.next_event()) is not None:
                if event is END_OF_MESSAGE:
                    self._answer(self._head)
                else:
                    self._head = event
        except HttpError as exc:
            self._transport.write(_response(exc.status, exc.reason, f"{exc.detail}\n".encode(),
                                            "text/plain; charset=utf-8", False))
            self._transport.close()

    def _answer(self, head) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status, reason, body, ctype = self._route(head.method, head.target.split("?", 1)[0])
        transport.write(_response(status, reason, body, ctype, head.keep_alive,
                                  send_body=head.method != "HEAD"))
        if not head.keep_alive:
            transport.close()

    def _route(self, method: str, path: str) -> tuple[int, str, bytes, str]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return 405, "Method Not Allowed", b"only GET and HEAD\n", text
        src = self._source
        if path == "/healthz":
            if src.draining:
                return 503, "Service Unavailable", b"draining\n", text
            return 200, "OK", b"ok\n", text
        if path == "/metrics":
            # A source may render itself (the master of `processes: N`, with process labels).
            render = getattr(src, "render_metrics", None)
            body = (render() if render is not None else render_metrics(src.stats(), src.draining)).encode()
            return 200, "OK", body, "text/plain; version=0.0.4; charset=utf-8"
        if path == "/debug/events":
            buf = io.StringIO()
            for name, base in src.bases():
                buf.write(f"== {name} ==\n")
                try:
                    base.dump_events(buf)
                except Exception as exc:  # a base freed meanwhile (worker replaced)
                    buf.write(f"  unavailable: {exc}\n")
            return 200, "OK", buf.getvalue().encode(), text
        return 404, "Not Found", f"no such path: {path}\n".encode(), text

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass
