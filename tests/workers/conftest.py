"""Fixtures and helpers for the workers layer: running Servers that are always stopped, client
sockets that are always closed, thread-safe recording protocols (waits and clients: ../helpers.py)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Callable

import pytest

from reactorsvc.workers.server import Server

from ..helpers import TIMEOUT, connect, only_method, recv_exactly

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
        sock = connect(address, timeout)
        self.socks.append(sock)
        return sock

    def close_all(self) -> None:
        for sock in self.socks:
            sock.close()


def who(sock: socket.socket) -> int:
    """The worker index a WhoAmI connection announces."""
    return recv_exactly(sock, 1)[0]


@pytest.fixture
def clients():
    c = Clients()
    yield c
    c.close_all()


@pytest.fixture
def serve(method):
    """serve(protocol_factory, **Server kwargs) -> a started Server (workers=2 unless given) whose
    bases all use `method` (so tests taking `serve` run once per backend), stopped at teardown
    (grace 0) if the test did not."""
    servers: list[Server] = []

    def start(factory: Callable[[], Any] = Echo, **kwargs: Any) -> Server:
        given = set(kwargs)
        kwargs.setdefault("workers", 2)
        kwargs.setdefault("event_config", lambda: only_method(method))
        server = Server(factory, **kwargs)
        servers.append(server)
        server.start()
        if "event_config" not in given:
            assert {base.method for _, base in server.bases()} == {method}
        return server

    yield start
    for server in servers:
        server.stop(0)
        assert server.wait_stopped(10), "server did not stop"


def worker_stats(server: Server, key: str) -> list:
    return [w[key] for w in server.stats()["workers"]]
