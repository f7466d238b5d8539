"""http-hello's bounds and the drain hook, on asyncio with real sockets (issue 13).

Each test here failed on the hand-written parser: a 5,000-digit Content-Length raised out of
the parser, lengths were unbounded, chunk framing accepted bare LF and junk, nothing bounded a
body (size or time), header_timeout doubled as the keep-alive limit, `100 Continue` went out
for requests that were then refused, and nothing told a connection the server was draining.
"""

from __future__ import annotations

import time

import pytest

from ..helpers import recv_exactly, recv_until_eof
from .test_services import (  # noqa: F401  (serve is a fixture)
    WAIT,
    http_server,
    parse_responses,
    request,
    serve,
)
from .test_services import SMUGGLING

pytestmark = pytest.mark.timeout(30)


def wait_until(predicate) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.parametrize("raw", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_smuggling_classics_get_400_and_close(serve, raw):
    server = http_server(serve, max_body=None)
    with server.connect() as sock:
        sock.sendall(raw + request())  # what follows a refused request is never answered
        [(status, headers, body)] = parse_responses(recv_until_eof(sock), ["POST"])
    assert (status, headers["Connection"]) == (400, "close")
    assert "Date" in headers


def test_max_body_on_content_length_refuses_before_the_body_and_without_100(serve):
    server = http_server(serve, max_body=10)
    head = [("Host", "t"), ("Content-Length", "11"), ("Expect", "100-continue")]
    with server.connect() as sock:
        sock.sendall(request("POST", headers=head))  # the client waits: no body is sent
        [(status, headers, body)] = parse_responses(recv_until_eof(sock), ["POST"])
    assert (status, headers["Connection"]) == (413, "close")
    assert b"over 10 bytes" in body


def test_max_body_on_chunks(serve):
    server = http_server(serve, max_body=4)
    te = [("Host", "t"), ("Transfer-Encoding", "chunked")]
    with server.connect() as sock:
        sock.sendall(request(headers=te, body=b"3\r\nabc\r\n0\r\n\r\n"))  # 3 bytes: served
        sock.sendall(request(headers=te, body=b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"))
        statuses = [s for s, _, _ in parse_responses(recv_until_eof(sock), ["GET", "GET"])]
    assert statuses == [200, 413]


def test_refused_method_with_expect_gets_405_with_allow_at_once(serve):
    server = http_server(serve)
    head = [("Host", "t"), ("Content-Length", "5"), ("Expect", "100-continue")]
    with server.connect() as sock:
        sock.sendall(request("PUT", headers=head))
        [(status, headers, _)] = parse_responses(recv_until_eof(sock), ["PUT"])
    assert (status, headers["Allow"], headers["Connection"]) == (405, "GET, HEAD", "close")


def test_body_timeout_gets_408(serve):
    server = http_server(serve, body_timeout=0.2, header_timeout=WAIT, keepalive_timeout=WAIT)
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(request(headers=[("Host", "t"), ("Content-Length", "5")], body=b"ab"))
        [(status, headers, body)] = parse_responses(recv_until_eof(sock), ["GET"])
        elapsed = time.monotonic() - started
    assert (status, headers["Connection"]) == (408, "close")
    assert b"request body not received within 0.2 s" in body
    assert elapsed < WAIT  # the header and keep-alive timers did not do it


def test_keepalive_timeout_is_not_header_timeout(serve):
    server = http_server(serve, header_timeout=WAIT, keepalive_timeout=0.2)
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(request())
        data = recv_until_eof(sock)  # the idle connection is closed without a word
        elapsed = time.monotonic() - started
    assert [s for s, _, _ in parse_responses(data, ["GET"])] == [200]
    assert 0.2 <= elapsed < WAIT


def test_drain_closes_an_idle_connection(serve):
    server = http_server(serve, drain_idle=0.05)
    with server.connect() as sock:
        sock.sendall(request())
        assert recv_exactly(sock, 1) == b"H"  # the response was written whole, at once
        proto = server.protocol(0)
        server.call(proto.drain)
        rest = recv_until_eof(sock)
    assert rest.startswith(b"TTP/1.1 200 OK")


def test_drain_answers_what_was_received_the_last_with_close(serve):
    server = http_server(serve)
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # a head in flight...
        proto = server.protocol(0)
        wait_until(lambda: server.call(lambda: proto._parser.request_started))
        server.call(proto.drain)
        sock.sendall(b"\r\n" + request())  # ...completed, and one more pipelined behind it
        responses = parse_responses(recv_until_eof(sock), ["GET", "GET"])
    assert [(s, h.get("Connection")) for s, h, _ in responses] == [(200, None), (200, "close")]
