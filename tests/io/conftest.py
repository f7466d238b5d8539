"""Fixtures for the I/O layer's tests: a base on each backend, a bounded run-until helper, a
recording protocol."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Callable

import pytest

import reactorsvc
import reactorsvc.io
from reactorsvc.base.flags import EVLOOP_ONCE


@pytest.fixture
def base(method, make_base):
    """A fresh EventBase on `method`, freed afterwards: every test taking it runs once per
    backend, as the reactor's contract suite does."""
    return make_base(method)


def run_until(base: reactorsvc.EventBase, cond: Callable[[], bool], timeout: float = 5.0,
              what: str = "condition") -> None:
    """Run base's loop in this thread until cond() holds; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    guard = reactorsvc.Event.timer(base, lambda fd, what, arg: None)
    try:
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            guard.add(left)  # wakes loop(ONCE) by the deadline at the latest
            base.loop(EVLOOP_ONCE)
    finally:
        guard.delete()


def run_for(base: reactorsvc.EventBase, seconds: float) -> None:
    """Run base's loop for `seconds` (for tests whose subject is time passing)."""
    done = []
    timer = reactorsvc.Event.timer(base, lambda fd, what, arg: done.append(True))
    timer.add(seconds)
    try:
        run_until(base, lambda: done, timeout=seconds + 5.0, what=f"{seconds} s to pass")
    finally:
        timer.delete()


class Recorder(asyncio.Protocol):
    """Records every callback as a tuple in `events`; `data` is all data received."""

    def __init__(self, keep_open: bool | None = None) -> None:
        self.events: list[tuple] = []
        self.data = bytearray()
        self.transport = None
        self.keep_open = keep_open

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.events.append(("made",))

    def data_received(self, data: bytes) -> None:
        assert type(data) is bytes and data
        self.data += data
        self.events.append(("data", len(data)))

    def eof_received(self):
        self.events.append(("eof",))
        return self.keep_open

    def connection_lost(self, exc) -> None:
        self.events.append(("lost", exc))

    def pause_writing(self) -> None:
        self.events.append(("pause",))

    def resume_writing(self) -> None:
        self.events.append(("resume",))

    def names(self) -> list[str]:
        return [e[0] for e in self.events]

    @property
    def lost(self) -> bool:
        return any(e[0] == "lost" for e in self.events)

    def lost_exc(self):
        [exc] = [e[1] for e in self.events if e[0] == "lost"]
        return exc


class Server:
    """start_server with a factory that keeps every protocol it made (in `protocols`)."""

    def __init__(self, base, make=Recorder, **kwargs) -> None:
        self.protocols: list = []

        def factory():
            proto = make()
            self.protocols.append(proto)
            return proto

        self.listener = reactorsvc.io.start_server(base, factory, **kwargs)
        self.address = self.listener.addresses[0]

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server_factory(base):
    """server_factory(make=Recorder, **start_server_kwargs) -> Server, closed afterwards."""
    made: list[Server] = []

    def factory(make=Recorder, **kwargs) -> Server:
        srv = Server(base, make, **kwargs)
        made.append(srv)
        return srv

    yield factory
    for srv in made:
        srv.close()


def read_available(sock: socket.socket, into: bytearray) -> bool:
    """Non-blocking: append what `sock` has to `into`; True at EOF."""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        into += chunk


def read_until_eof_or(base: reactorsvc.EventBase, sock: socket.socket, into: bytearray,
                     enough: int | None = None, timeout: float = 5.0) -> None:
    """Run base's loop until `sock` reaches EOF (or `into` holds `enough` bytes), reading
    into `into`. The socket is watched on base meanwhile, so its data wakes the loop even
    when another thread produces it."""
    sock.setblocking(False)
    watch = reactorsvc.Event(base, sock.fileno(), reactorsvc.EV_READ | reactorsvc.EV_PERSIST,
                             lambda fd, what, arg: None)
    watch.add()
    try:
        run_until(base, lambda: read_available(sock, into)
                  or (enough is not None and len(into) >= enough), timeout=timeout,
                  what="data from a socket")
    finally:
        watch.delete()


def small_sndbuf(transport) -> None:
    """Make the kernel take little, so writes queue in the transport deterministically."""
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
