"""Built-in services (echo, discard, http-hello) on asyncio with real sockets, the
HTTP request parser on its own, and the service registry (make_factory)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import http.client
import io
import socket
import threading
import time

import pytest

from reactorsvc.daemon.services import BUILTIN, ServiceError, make_factory, resolve
from reactorsvc.daemon.services.discard import DiscardProtocol
from reactorsvc.daemon.services.echo import EchoProtocol
from reactorsvc.daemon.services.http_hello import HttpHelloProtocol
from reactorsvc.daemon.services.http_parser import END_OF_MESSAGE, HttpError, RequestParser

from ..helpers import recv_exactly, recv_until_eof

WAIT = 10.0  # bound on every wait; the tests never come close to it


# -- an asyncio server in its own thread, driven by blocking clients --------


class _WithCallLater:
    """A transport proxy adding the ``call_later`` extra that reactorsvc transports have."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()

    def get_extra_info(self, name, default=None):
        if name == "call_later":
            return self._loop.call_later
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name):
        return getattr(self._transport, name)


def instrumented(cls, sndbuf=None):
    """Subclass a service to give it a timer, and expose what the tests wait on."""

    class Instrumented(cls):
        def __init__(self, **options):
            super().__init__(**options)
            self.paused = threading.Event()
            self.lost = threading.Event()
            self.raw_transport = None
            self.max_write_buffer = 0  # largest write buffer after any callback

        def connection_made(self, transport):
            self.raw_transport = transport
            if sndbuf is not None:  # a known kernel buffer, so flow control starts soon
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            super().connection_made(_WithCallLater(transport))

        def _note_buffer(self):
            size = self.raw_transport.get_write_buffer_size()
            self.max_write_buffer = max(self.max_write_buffer, size)

        def data_received(self, data):
            super().data_received(data)
            self._note_buffer()

        def pause_writing(self):
            super().pause_writing()
            self.paused.set()

        def resume_writing(self):
            super().resume_writing()
            self._note_buffer()

        def connection_lost(self, exc):
            super().connection_lost(exc)
            self.lost.set()

    return Instrumented


class LoopServer:
    """``loop.create_server`` on 127.0.0.1:0 in a thread; ``protocols`` in accept order."""

    def __init__(self, factory) -> None:
        self.protocols: list = []
        self._accepted = threading.Condition()
        self._transports: list = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asyncio-server")
        self._thread.start()
        self._server = self.run(self._loop.create_server(self._recording(factory), "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def _recording(self, factory):
        def make():
            proto = factory()
            with self._accepted:
                self.protocols.append(proto)
                self._accepted.notify_all()
            made = proto.connection_made

            def connection_made(transport):
                self._transports.append(transport)
                made(transport)

            proto.connection_made = connection_made
            return proto

        return make

    def protocol(self, index: int):
        """The index-th connection's protocol, waiting for the accept if need be."""
        with self._accepted:
            assert self._accepted.wait_for(lambda: len(self.protocols) > index, WAIT)
            return self.protocols[index]

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(WAIT)

    def call(self, fn):
        """Run fn() in the loop's thread (where the protocol's state lives); return its result."""
        result: concurrent.futures.Future = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(lambda: result.set_result(fn()))
        return result.result(WAIT)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)

    def close(self) -> None:
        async def shutdown():
            self._server.close()
            for transport in self._transports:
                transport.abort()
            await self._server.wait_closed()
            await asyncio.sleep(0)  # runs the connection_lost callbacks abort() queued

        self.run(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()


@pytest.fixture
def serve():
    servers: list[LoopServer] = []

    def start(factory) -> LoopServer:
        servers.append(LoopServer(factory))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def http_server(serve, sndbuf=None, **options) -> LoopServer:
    cls = instrumented(HttpHelloProtocol, sndbuf)
    return serve(functools.partial(cls, **HttpHelloProtocol.validate_options(**options)))


def request(method="GET", target="/", version="1.1", headers=(("Host", "t"),), body=b""):
    lines = [f"{method} {target} HTTP/{version}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Unclosable(io.BytesIO):
    def close(self) -> None:
        pass  # HTTPResponse closes its file after each body; the next response follows


class _BytesSock:
    def __init__(self, data: bytes) -> None:
        self._fp = _Unclosable(data)

    def makefile(self, mode):
        return self._fp


def parse_responses(data: bytes, methods: list[str]) -> list[tuple[int, dict, bytes]]:
    """Split a byte stream into responses (one per request method); all bytes must be used."""
    sock = _BytesSock(data)
    out = []
    for method in methods:
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        out.append((resp.status, dict(resp.getheaders()), resp.read()))
    assert sock._fp.read() == b"", "bytes after the last expected response"
    return out


# -- echo and discard --------------------------------------------------------


def test_echo_from_make_factory_echoes_and_closes_after_eof(serve):
    server = serve(make_factory("echo", {}))
    with server.connect() as sock:
        for message in (b"hello", b"\x00\xff" * 1000, b"x"):
            sock.sendall(message)
            assert recv_exactly(sock, len(message)) == message
        sock.sendall(b"last")
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b"last"
    assert server.protocols[0].bytes_echoed == 5 + 2000 + 1 + 4


# Loopback's MSS is ~64 KiB: a send buffer below it stalls on delayed ACKs.
SNDBUF = 262144
HIGH_WATER = 65536  # asyncio's default write-buffer limits: 64 KiB high, 16 KiB low
LOW_WATER = 16384
READ_SIZE = 262144  # asyncio reads up to 256 KiB per data_received


def test_echo_stops_reading_while_client_does_not_read(serve):
    server = serve(instrumented(EchoProtocol, sndbuf=SNDBUF))
    payload = bytes(range(256)) * (16 * 4096)  # 16 MiB, far beyond every buffer on the way
    with server.connect() as sock:
        send_errors: list[OSError] = []

        def send() -> None:
            try:
                sock.sendall(payload)
            except OSError as exc:  # only when the test fails and shuts the socket down
                send_errors.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            proto = server.protocol(0)
            assert proto.paused.wait(WAIT)
            # A window in which nothing may happen: without flow control the server
            # would read (and buffer) all 16 MiB in a few milliseconds.
            sender.join(0.3)
            assert sender.is_alive()
            reading, buffered = server.call(
                lambda: (
                    proto.raw_transport.is_reading(),
                    proto.raw_transport.get_write_buffer_size(),
                )
            )
            assert reading is False
            assert LOW_WATER < buffered <= HIGH_WATER + READ_SIZE
            assert recv_exactly(sock, len(payload)) == payload
            sender.join(WAIT)
        finally:
            if sender.is_alive():  # the test failed: unblock the sender
                sock.shutdown(socket.SHUT_RDWR)
                sender.join(WAIT)
        assert send_errors == []
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b""
    assert proto.lost.wait(WAIT)
    assert proto.bytes_echoed == len(payload)
    assert HIGH_WATER < proto.max_write_buffer <= HIGH_WATER + READ_SIZE


def test_discard_counts_and_sends_nothing(serve):
    server = serve(instrumented(DiscardProtocol))
    with server.connect() as sock:
        sock.sendall(b"a" * 100_000)
        sock.sendall(b"b" * 23)
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b""
    proto = server.protocols[0]
    assert proto.lost.wait(WAIT)
    assert proto.bytes_discarded == 100_023


# -- http-hello through http.client and raw sockets -------------------------


def test_http_keep_alive_serves_several_requests_on_one_connection(serve):
    server = http_server(serve, body="bonjour\n")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        for path in ("/", "/a", "/b?c=d"):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"bonjour\n")
            assert resp.getheader("Content-Length") == "8"
            assert resp.getheader("Connection") is None
            assert not resp.will_close
        conn.request("HEAD", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("Content-Length"), resp.read()) == (200, "8", b"")
        conn.request("POST", "/", body=b"some body")
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("Allow")) == (405, "GET, HEAD")
        assert resp.read() == b"405 Method Not Allowed\n"
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"bonjour\n"
    finally:
        conn.close()
    assert len(server.protocols) == 1
    assert server.call(lambda: server.protocols[0].requests) == 6


def test_http_pipelined_requests_answered_in_order(serve):
    server = http_server(serve)
    pipeline = (
        request("GET", "/1")
        + request("HEAD", "/2")
        + request("DELETE", "/3", headers=[("Host", "t"), ("Content-Length", "4")], body=b"abcd")
        + request("GET", "/4", headers=[("Host", "t"), ("Connection", "close")])
    )
    with server.connect() as sock:
        sock.sendall(pipeline)
        data = recv_until_eof(sock)
    responses = parse_responses(data, ["GET", "HEAD", "DELETE", "GET"])
    assert [(status, body) for status, _, body in responses] == [
        (200, b"Hello, world!\n"),
        (200, b""),
        (405, b"405 Method Not Allowed\n"),
        (200, b"Hello, world!\n"),
    ]
    assert [h.get("Connection") for _, h, _ in responses] == [None, None, None, "close"]


def test_http_connection_close_and_http10(serve):
    server = http_server(serve)
    for raw in (
        request(headers=[("Host", "t"), ("Connection", "close")]),
        request(version="1.0", headers=[]),
    ):
        with server.connect() as sock:
            sock.sendall(raw)
            [(status, headers, body)] = parse_responses(recv_until_eof(sock), ["GET"])
            assert (status, headers["Connection"], body) == (200, "close", b"Hello, world!\n")
    with server.connect() as sock:  # HTTP/1.0 asking for keep-alive keeps the connection
        keep = request(version="1.0", headers=[("Connection", "keep-alive")])
        sock.sendall(keep + keep + request(version="1.0", headers=[]))
        responses = parse_responses(recv_until_eof(sock), ["GET"] * 3)
    assert [h["Connection"] for _, h, _ in responses] == ["keep-alive", "keep-alive", "close"]


def test_http_large_responses_to_a_client_that_does_not_read(serve):
    server = http_server(serve, sndbuf=SNDBUF, body="x" * 65536)
    with server.connect() as sock:
        sock.sendall(request() * 200)
        proto = server.protocol(0)
        assert proto.paused.wait(WAIT)
        # The kernel buffers hold a few responses; the rest wait in the parser, unanswered.
        assert server.call(lambda: proto.requests) < 50
        sock.sendall(request(headers=[("Host", "t"), ("Connection", "close")]))
        responses = parse_responses(recv_until_eof(sock), ["GET"] * 201)
    assert {(status, len(body)) for status, _, body in responses} == {(200, 65536)}
    assert proto.requests == 201
    # writing stops at the response that crosses the high-water mark
    assert HIGH_WATER < proto.max_write_buffer < HIGH_WATER + 65536 + 1024


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
    ids=["request-line", "header-name", "no-host", "version", "te-gzip", "414", "431"],
)
def test_http_bad_request_gets_status_then_close(serve, raw, status):
    server = http_server(serve)
    with server.connect() as sock:
        sock.sendall(raw + request())  # the request after a bad one is never answered
        [(got, headers, body)] = parse_responses(recv_until_eof(sock), ["GET"])
    assert (got, headers["Connection"]) == (status, "close")
    assert body.startswith(f"{status} ".encode())


def test_http_limits_are_options(serve):
    server = http_server(serve, max_request_line=32, max_header_size=64)
    cases = [
        (request(target="/" + "a" * 18), 200),  # request line of exactly 32 bytes
        (request(target="/" + "a" * 19), 414),
        (request(headers=[("Host", "t"), ("X", "a" * 48)]), 200),  # 64-byte header section
        (request(headers=[("Host", "t"), ("X", "a" * 49)]), 431),
    ]
    for raw, status in cases:
        with server.connect() as sock:
            sock.sendall(raw)
            if status == 200:
                sock.shutdown(socket.SHUT_WR)
            [(got, _, _)] = parse_responses(recv_until_eof(sock), ["GET"])
            assert got == status, raw


def test_http_slow_header_gets_408(serve):
    server = http_server(serve, header_timeout=0.2)
    with server.connect() as sock:
        started = time.monotonic()  # before anything can arm the timer
        sock.sendall(request())  # a full request, answered, re-arms the timer
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # ... and never the empty line
        data = recv_until_eof(sock)
        elapsed = time.monotonic() - started
    statuses = [status for status, _, _ in parse_responses(data, ["GET", "GET"])]
    assert statuses == [200, 408]
    assert 0.2 <= elapsed < WAIT
    with server.connect() as sock:  # nothing sent at all: closed without a response
        assert recv_until_eof(sock) == b""
    assert server.call(lambda: [p.requests for p in server.protocols]) == [1, 0]


def test_http_chunked_request_body_is_read_and_dropped(serve):
    server = http_server(serve)
    te = [("Host", "t"), ("Transfer-Encoding", "chunked")]
    body = b"5;ext=1\r\nhello\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\nTrailer: v\r\n\r\n"
    with server.connect() as sock:
        sock.sendall(request("POST", headers=te, body=body) + request(headers=te, body=body))
        sock.sendall(request(headers=[("Host", "t"), ("Connection", "close")]))
        statuses = [s for s, _, _ in parse_responses(recv_until_eof(sock), ["POST", "GET", "GET"])]
    assert statuses == [405, 200, 200]
    with server.connect() as sock:
        sock.sendall(request(headers=te, body=b"5\r\nhello-too-long\r\n0\r\n\r\n"))
        [(status, _, _)] = parse_responses(recv_until_eof(sock), ["GET"])
    assert status == 400


def test_http_expect_100_continue(serve):
    server = http_server(serve)
    head = [("Host", "t"), ("Content-Length", "5"), ("Expect", "100-continue")]
    with server.connect() as sock:
        sock.sendall(request(headers=head))
        assert recv_exactly(sock, 25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello" + request(headers=[("Host", "t"), ("Connection", "close")]))
        statuses = [s for s, _, _ in parse_responses(recv_until_eof(sock), ["GET", "GET"])]
    assert statuses == [200, 200]


# -- the parser on its own ----------------------------------------------------

PIPELINE = (
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
    b"POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc"
    b"PUT /c HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nxyz\r\n0\r\nT: 1\r\n\r\n"
    b"GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
    b"GET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    b"GET /never-parsed HTTP/1.1\r\n\r\n"  # after a close: not parsed, not refused
)
EXPECTED = [
    ("GET", "/", (1, 1), True, False),
    ("POST", "/p", (1, 1), True, True),
    ("PUT", "/c", (1, 1), True, True),
    ("GET", "/x", (1, 0), True, False),
    ("GET", "/y", (1, 1), False, False),
]


def parse_in_pieces(data: bytes, size: int, parser=None) -> list:
    parser = parser or RequestParser()
    events = []
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size])
        while (event := parser.next_event()) is not None:
            events.append(event)
    return events


@pytest.mark.parametrize("size", [1, 2, 7, len(PIPELINE)])
def test_parser_same_events_however_the_bytes_are_split(size):
    events = parse_in_pieces(PIPELINE, size)
    assert events[1::2] == [END_OF_MESSAGE] * 5
    heads = events[0::2]
    assert [(h.method, h.target, h.version, h.keep_alive, h.has_body) for h in heads] == EXPECTED
    assert heads[4].headers == [("host", "a"), ("connection", "close")]


@pytest.mark.parametrize("line, status, bound", [(b"GET /", 414, 100),
                                                (b"GET / HTTP/1.1\r\nX: ", 431, 1100)])
def test_parser_bounds_a_head_still_arriving(line, status, bound):
    # The request line is measured as it arrives (414 at max_request_line); a header line is
    # joined by httptools itself, so what is still arriving is bounded by both limits together.
    parser = RequestParser(max_request_line=100, max_header_size=1000)
    parser.feed(line)
    fed = len(line)
    while fed <= bound - 10:
        assert parser.next_event() is None, fed
        parser.feed(b"a" * 10)
        fed += 10
    parser.feed(b"a" * 10)
    with pytest.raises(HttpError) as info:
        parser.next_event()
    assert info.value.status == status


def test_parser_max_body_on_content_length_and_on_chunks():
    parser = RequestParser(max_body=5)
    raw = request("POST", headers=[("Host", "a"), ("Content-Length", "5")], body=b"12345")
    [head, end] = parse_in_pieces(raw, 3, parser)
    assert (head.content_length, end) == (5, END_OF_MESSAGE)
    for raw in (request("POST", headers=[("Host", "a"), ("Content-Length", "6")], body=b"123456"),
                request("POST", headers=[("Host", "a"), ("Transfer-Encoding", "chunked")],
                        body=b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")):
        with pytest.raises(HttpError) as info:
            parse_in_pieces(raw, 4, RequestParser(max_body=5))
        assert info.value.status == 413


# The request-smuggling classics (RFC 9112 §6.3, §7.1): llhttp refuses each.
SMUGGLING = {
    "cl-5000-digits": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    "cl-2**64+5": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\n",
    "cl-conflicting": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "cl-duplicate": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
    "cl-and-te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "lf-after-chunk-data": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"1\r\na\n0\r\n\r\n",
    "lf-after-chunk-size": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"1\na\r\n0\r\n\r\n",
    "space-before-chunk-size": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b" 1\r\na\r\n0\r\n\r\n",
    "junk-in-chunk-extension": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"1;a\x01b\r\na\r\n0\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n",
}


@pytest.mark.parametrize("raw", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_parser_refuses_the_smuggling_classics(raw):
    with pytest.raises(HttpError) as info:
        parse_in_pieces(raw, 3, RequestParser(max_body=None))
    assert info.value.status == 400


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"G@T / HTTP/1.1\r\n", 400),
        (b"GET / HTTP/1.x\r\n", 400),
        (b"GET / HTTP/3.0\r\n", 505),
        (b"GET /\rx HTTP/1.1\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400),
        (b"GET /" + b"a" * 8200, 414),  # refused before the line ends
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 80000, 431),
    ],
)
def test_parser_refuses(raw, status):
    parser = RequestParser()
    with pytest.raises(HttpError) as info:
        parse_in_pieces(raw, 4096, parser)
    assert info.value.status == status
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(HttpError):  # a failed parser stays failed
        parser.next_event()


@pytest.mark.parametrize(
    "version, connection, keep_alive",
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "Keep-Alive, Close", False),
        ("1.0", None, False),
        ("1.0", "keep-alive", True),
        ("1.0", "upgrade, KEEP-ALIVE", True),
    ],
)
def test_parser_keep_alive_rules(version, connection, keep_alive):
    headers = [("Host", "a")] + ([("Connection", connection)] if connection else [])
    [head, end] = parse_in_pieces(request(version=version, headers=headers), 100)
    assert (head.keep_alive, end) == (keep_alive, END_OF_MESSAGE)


# -- the registry -----------------------------------------------------------


def test_builtins_resolve_to_their_classes():
    assert {name: resolve(name) for name in BUILTIN} == {
        "echo": EchoProtocol,
        "discard": DiscardProtocol,
        "http-hello": HttpHelloProtocol,
    }
    factory = make_factory("http-hello", {"body": "hi", "header_timeout": 1})
    assert factory.func is HttpHelloProtocol
    assert factory.keywords == {
        "body": b"hi",
        "max_request_line": 8192,
        "max_header_size": 65536,
        "max_body": 1 << 20,
        "header_timeout": 1.0,
        "body_timeout": 30.0,
        "keepalive_timeout": 75.0,
        "drain_idle": 0.5,
    }
    assert isinstance(factory(), HttpHelloProtocol)
    assert make_factory("asyncio:Protocol", None).func is asyncio.Protocol


@pytest.mark.parametrize(
    "target, options, option, message",
    [
        ("echo", {"size": 1}, "size", "service 'echo' has no option 'size' (accepted: none)"),
        ("http-hello", {"bdy": "x"}, "bdy", "service 'http-hello' has no option 'bdy'"),
        ("http-hello", {"body": 3}, "body", "body must be a string, not int"),
        ("http-hello", {"max_request_line": 0}, "max_request_line", "must be >= 1, got 0"),
        ("http-hello", {"max_header_size": True}, "max_header_size", "must be an integer"),
        ("http-hello", {"header_timeout": -1}, "header_timeout", "must be > 0, got -1"),
        ("http-hello", {"header_timeout": "5"}, "header_timeout", "seconds or null, not str"),
        ("http-hello", {"max_body": -1}, "max_body", "max_body must be >= 0, got -1"),
        ("http-hello", {"max_body": 1.5}, "max_body", "must be an integer or null, not float"),
        ("http-hello", {"body_timeout": 0}, "body_timeout", "must be > 0, got 0"),
        ("http-hello", {"keepalive_timeout": float("inf")}, "keepalive_timeout", "must be > 0"),
        ("http-hello", [("body", "x")], None, "options must be a mapping, not list"),
        ("gopher", {}, None, "unknown service 'gopher': not a built-in (echo, discard,"),
        ("no_such_module_xyz:f", {}, None, "cannot import 'no_such_module_xyz': ModuleNotFound"),
        ("asyncio:NoSuchThing", {}, None, "'asyncio' has no attribute 'NoSuchThing'"),
        ("asyncio.events:_MISSING", {}, None, "has no attribute '_MISSING'"),
        ("socket:AF_INET", {}, None, "'AF_INET' is not callable"),
    ],
)
def test_make_factory_refuses_naming_the_culprit(target, options, option, message):
    with pytest.raises(ServiceError) as info:
        make_factory(target, options)
    assert message in str(info.value)
    assert info.value.option == option
    assert isinstance(info.value, ValueError)


def test_make_factory_reports_a_module_that_fails_on_import(tmp_path, monkeypatch):
    (tmp_path / "svc_broken_on_import.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ServiceError, match=r"cannot import 'svc_broken_on_import': RuntimeError: boom"
    ):
        make_factory("svc_broken_on_import:make", {})


def test_protocols_called_directly_name_a_bad_option():
    with pytest.raises(TypeError, match="'size'"):
        EchoProtocol(size=1)
    with pytest.raises(ServiceError, match="max_header_size must be >= 1"):
        HttpHelloProtocol(max_header_size=-5)
