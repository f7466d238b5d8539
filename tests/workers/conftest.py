"""Fixtures and helpers for the workers layer: running Servers that are always stopped, client
sockets that are always closed, thread-safe recording protocols and bounded waits."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Callable

import pytest

from reactorsvc.workers.server import Server

TIMEOUT = 5.0  # bound on every wait for something that must happen


def wait_until(cond: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll cond() (every 5 ms, on an Event that never fires) until true; AssertionError after
    `timeout` seconds. For state only observable by polling (stats counters)."""
    ticker = threading.Event()
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        ticker.wait(0.005)


class Echo(asyncio.Protocol):
    """The echo protocol, written for asyncio: records its callbacks in `calls`."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.thread = threading.current_thread()
        self.calls.append(("made",))

    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))
        self.transport.write(data)

    def eof_received(self) -> None:
        self.calls.append(("eof",))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.calls.append(("lost", exc))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class WhoAmI(Echo):
    """Sends its worker's index (one byte) on connection_made, then echoes."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.write(bytes([transport.get_extra_info("worker").index]))


class Made:
    """A protocol factory that keeps every protocol it made, thread-safely, and lets a test wait
    until a number of them have seen connection_lost."""

    def __init__(self, cls: Callable[[], Any] = Echo) -> None:
        self._cls = cls
        self._cond = threading.Condition()
        self.protocols: list[Any] = []
        self.lost: list[tuple[Any, BaseException | None]] = []   # (protocol, exc), in order

    def __call__(self) -> Any:
        proto = self._cls()
        inner = proto.connection_lost

        def connection_lost(exc: BaseException | None) -> None:
            inner(exc)
            with self._cond:
                self.lost.append((proto, exc))
                self._cond.notify_all()

        proto.connection_lost = connection_lost
        with self._cond:
            self.protocols.append(proto)
        return proto

    def wait_lost(self, n: int, timeout: float = TIMEOUT) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.lost) >= n, timeout):
                raise AssertionError(f"{len(self.lost)} connection_lost calls after {timeout} s, "
                                     f"expected {n}")


class Clients:
    """Blocking client sockets (each with a timeout), all closed at teardown."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []

    def connect(self, address: tuple, timeout: float = TIMEOUT) -> socket.socket:
        sock = socket.create_connection(address[:2], timeout=timeout)
        self.socks.append(sock)
        return sock

    def close_all(self) -> None:
        for sock in self.socks:
            sock.close()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes (the socket's timeout bounds each recv); AssertionError on early EOF."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def recv_until_eof(sock: socket.socket) -> bytes:
    """Everything until the peer closes (each recv bounded by the socket's timeout)."""
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


def echo(sock: socket.socket, payload: bytes) -> None:
    """Send payload and assert the very same bytes come back."""
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload


def who(sock: socket.socket) -> int:
    """The worker index a WhoAmI connection announces."""
    return recv_exact(sock, 1)[0]


@pytest.fixture
def clients():
    c = Clients()
    yield c
    c.close_all()


@pytest.fixture
def serve():
    """serve(protocol_factory, **Server kwargs) -> a started Server (workers=2 unless given),
    stopped at teardown (grace 0) if the test did not."""
    servers: list[Server] = []

    def start(factory: Callable[[], Any] = Echo, **kwargs: Any) -> Server:
        kwargs.setdefault("workers", 2)
        server = Server(factory, **kwargs)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop(0)
        assert server.wait_stopped(10), "server did not stop"


def worker_stats(server: Server, key: str) -> list:
    return [w[key] for w in server.stats()["workers"]]
