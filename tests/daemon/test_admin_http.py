"""The admin endpoint's HTTP: Date and Allow, no 100 Continue, flow control, drain (issue 13).

A real Server with the admin endpoint on its supervisor loop, clients on TCP 127.0.0.1. Before
issue 13 the 405 had no Allow, responses no Date, a client pipelining GET /metrics without
reading grew the server's memory without bound, and nothing closed an admin connection on stop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from reactorsvc import Server
from reactorsvc.daemon.admin import AdminProtocol

from ..helpers import recv_until_eof
from .test_services import parse_responses

pytestmark = pytest.mark.timeout(30)
WAIT = 10.0


class _Silent(asyncio.Protocol):
    """Keeps its connection open and has no drain hook: it holds a stop for its grace."""


@pytest.fixture
def admin_server():
    server = Server(_Silent, host="127.0.0.1", port=0, workers=1)
    server.add_admin("127.0.0.1", 0, lambda: AdminProtocol(server))
    server.start()
    yield server
    server.stop(grace=1.0)


def admin_connect(server) -> socket.socket:
    host, port = server.admin_addresses[0][:2]
    return socket.create_connection((host, port), timeout=WAIT)


def wait_until(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


def test_date_on_every_response_and_allow_on_405(admin_server):
    with admin_connect(admin_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                     b"DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                     b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        responses = parse_responses(recv_until_eof(sock), ["GET", "DELETE", "GET"])
    assert [s for s, _, _ in responses] == [200, 405, 404]
    assert all("Date" in h for _, h, _ in responses)
    assert responses[1][1]["Allow"] == "GET, HEAD"


def test_refused_request_with_expect_gets_no_100(admin_server):
    with admin_connect(admin_server) as sock:
        sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        data = recv_until_eof(sock)
    [(status, headers, _)] = parse_responses(data, ["POST"])
    assert (status, headers["Allow"], headers["Connection"]) == (405, "GET, HEAD", "close")


def test_pipelined_metrics_without_reading_pauses_the_client(admin_server):
    protocols = admin_server._admin_protocols
    with admin_connect(admin_server) as sock:
        sock.setblocking(False)
        burst = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n" * 1000
        sent = 0
        deadline = time.monotonic() + WAIT
        # Never reading: the server must stop reading too, so our sends end up refused.
        while time.monotonic() < deadline:
            try:
                sent += sock.send(burst)
            except BlockingIOError:
                break
        else:
            pytest.fail(f"the server kept reading: {sent} bytes sent")
        paused = wait_until(lambda: [p for p in list(protocols) if p._paused], "a paused admin")
        assert len(paused) == 1


def test_drain_closes_idle_admin_connections_and_says_close_while_draining(admin_server):
    host, port = admin_server.addresses[0][:2]
    held = socket.create_connection((host, port), timeout=WAIT)  # holds the stop for its grace
    try:
        wait_until(lambda: admin_server.stats()["workers"][0]["connections"], "the connection")
        with admin_connect(admin_server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            wait_until(lambda: sock.recv(65536), "the answer")
            stopper = threading.Thread(target=admin_server.stop, kwargs={"grace": 1.5})
            stopper.start()
            assert sock.recv(1) == b""  # the drain closed the idle admin connection
            assert stopper.is_alive()  # ... well before the end of grace
        with admin_connect(admin_server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            [(status, headers, body)] = parse_responses(recv_until_eof(sock), ["GET"])
        assert (status, headers["Connection"], body) == (503, "close", b"draining\n")
        stopper.join(WAIT)
    finally:
        held.close()


def test_admin_read_timeouts():
    server = Server(_Silent, host="127.0.0.1", port=0, workers=1)
    server.add_admin("127.0.0.1", 0, lambda: AdminProtocol(server, header_timeout=0.2,
                                                           keepalive_timeout=0.2))
    server.start()
    try:
        with admin_connect(server) as sock:  # answered, then idle: closed without a word
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            [(status, _, _)] = parse_responses(recv_until_eof(sock), ["GET"])
        assert status == 200
        with admin_connect(server) as sock:  # a head that never ends: 408
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
            [(status, headers, _)] = parse_responses(recv_until_eof(sock), ["GET"])
        assert (status, headers["Connection"]) == (408, "close")
    finally:
        server.stop(grace=1.0)
