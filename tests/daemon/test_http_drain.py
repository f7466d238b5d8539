"""The daemon's HTTP drain, as a subprocess under real clients (issue 13).

Before the drain hook: SIGTERM with 50 keep-alive clients lost 50 of 50 fully sent requests
(reset at the end of grace), one idle keep-alive client kept `serve` alive for the whole
grace, and 500 slow-body clients were all still open 20 s later.
"""

from __future__ import annotations

import select
import signal
import socket
import threading
import time

import pytest

from ..helpers import TIMEOUT as IO_TIMEOUT
from ..helpers import connect, http_get, wait_for
from .conftest import write_config

GRACE = 60  # far beyond every wait below: finishing early is the drain's doing, not grace's

CONFIG = f"""\
workers: 2
listeners:
  - name: http
    bind: 127.0.0.1:1
    service: http-hello
    options:
      body_timeout: 1
    backlog: 1024
admin:
  bind: 127.0.0.1:1
shutdown:
  grace: {GRACE}
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def read_response(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One response's head (its body read and dropped), or None at EOF/reset before any byte."""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except ConnectionError:
            chunk = b""
        if not chunk:
            assert not buf, f"a response cut short: {bytes(buf)!r}"
            return None
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "a response body cut short"
        rest += chunk
    buf[:] = rest[length:]
    return head


def server_closed(sock: socket.socket) -> bool:
    """The server's FIN (or RST) is already here: what a pooled HTTP client checks before
    reusing a keep-alive connection."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionError:
        return True


class Client(threading.Thread):
    """Keep-alive requests in a loop until the server closes; every request ends up in one
    of: answered, not sent (the server had closed before), crossed (the server's close was
    here by the time sendall returned: it closed before it could see the request), lost."""

    def __init__(self, address, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.address, self.stop = address, stop
        self.answered = self.not_sent = self.crossed = self.lost = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.address, timeout=IO_TIMEOUT) as sock:
                buf = bytearray()
                while not self.stop.is_set():
                    if server_closed(sock):
                        self.not_sent += 1
                        return
                    try:
                        sock.sendall(REQUEST)
                    except ConnectionError:
                        self.not_sent += 1
                        return
                    crossed = server_closed(sock)
                    head = read_response(sock, buf)
                    if head is None:
                        self.crossed += crossed
                        self.lost += not crossed
                        return
                    self.answered += 1
                    if b"Connection: close" in head:
                        return
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.timeout(60)
def test_sigterm_under_50_keepalive_clients_loses_no_request(daemon, tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    d = daemon(cfg)
    stop = threading.Event()
    clients = [Client(cfg.listeners["http"], stop) for _ in range(50)]
    for c in clients:
        c.start()
    try:
        wait_for(lambda: all(c.answered >= 3 for c in clients), IO_TIMEOUT * 3,
                 "every client to be answered a few times")
        d.signal(signal.SIGTERM)
        assert d.wait(GRACE / 2) == 0
        for c in clients:
            c.join(IO_TIMEOUT)
    finally:
        stop.set()
    assert [c.error for c in clients if c.error] == []
    assert not any(c.is_alive() for c in clients)
    assert sum(c.lost for c in clients) == 0, [(c.answered, c.crossed, c.lost) for c in clients]
    assert d.events("closing_connections") == []  # nobody was cut at the end of grace


@pytest.mark.timeout(30)
def test_one_idle_keepalive_client_does_not_hold_the_stop_for_grace(daemon, tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    d = daemon(cfg)
    with connect(cfg.listeners["http"]) as sock:
        sock.sendall(REQUEST)
        assert read_response(sock, bytearray()) is not None
        started = time.monotonic()
        d.signal(signal.SIGTERM)
        assert sock.recv(1) == b""  # closed by the drain, not by the end of grace
        assert d.wait(GRACE / 2) == 0
    assert time.monotonic() - started < GRACE / 2


@pytest.mark.timeout(60)
def test_500_slow_body_clients_are_closed_within_the_body_timeout(daemon, tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    d = daemon(cfg)
    address = cfg.listeners["http"]
    head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
    slow = []
    try:
        for _ in range(500):
            sock = connect(address)
            sock.sendall(head)
            slow.append(sock)
        started = time.monotonic()
        open_socks = set(slow)
        statuses = []
        served = False
        while open_socks:  # one byte per second each, until the server closes them
            assert time.monotonic() - started < 20, f"{len(open_socks)} slow clients still open"
            readable = select.select(list(open_socks), [], [], 1.0)[0]
            for sock in readable:
                data = b""
                try:
                    while chunk := sock.recv(65536):
                        data += chunk
                except ConnectionError:
                    pass
                statuses.append(data[:12])
                open_socks.discard(sock)
            if not readable:
                for sock in open_socks:
                    try:
                        sock.send(b"x")
                    except ConnectionError:
                        pass
            if not served:  # a normal client is served meanwhile
                assert http_get(address, "/") == (200, b"Hello, world!\n")
                served = True
        assert set(statuses) == {b"HTTP/1.1 408"}
        assert len(statuses) == 500
    finally:
        for sock in slow:
            sock.close()
    assert d.proc.poll() is None
