"""Stopping: grace honoured, early end when clients leave, stop() from another thread and from a
protocol callback, serve_forever() in a thread, SIGTERM/SIGINT in a subprocess."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reactorsvc.errors import ReactorError
from reactorsvc.workers.server import Server

from ..helpers import TIMEOUT, echo, on_one_backend, recv_exactly, recv_until_eof, subprocess_env, wait_for
from .conftest import Echo, Made

SCRIPT = Path(__file__).with_name("serve_script.py")
REPO = Path(__file__).resolve().parents[2]


def _assert_refused(address: tuple) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()


@on_one_backend()
def test_stop_waits_out_the_grace_then_closes_open_connections(serve, clients):
    made = Made(Echo)
    server = serve(made, workers=2)
    address = server.addresses[0]
    socks = [clients.connect(address) for _ in range(3)]
    for sock in socks:
        echo(sock, b"ping")
    t0 = time.monotonic()
    server.stop(grace=0.5)
    took = time.monotonic() - t0
    assert 0.45 <= took < 2.5, took
    for sock in socks:
        assert recv_until_eof(sock) == b""
    assert len(made.protocols) == 3
    for proto in made.protocols:
        assert [c for c in proto.calls if c[0] == "lost"] == [("lost", None)]
    assert server.wait_stopped(0)
    assert [w["connections"] for w in server.stats()["workers"]] == [0, 0]
    assert not any(w["alive"] for w in server.stats()["workers"])
    assert server.addresses == []
    _assert_refused(address)
    # stop() joined every thread of the server before returning.
    assert [t.name for t in threading.enumerate() if t.name.startswith("reactorsvc-")] == []


def test_stop_ends_early_when_idle_clients_leave_during_the_grace(serve, clients):
    made = Made(Echo)
    server = serve(made, workers=2)
    socks = [clients.connect(server.addresses[0]) for _ in range(4)]
    for sock in socks:
        echo(sock, b"x")
    stopper = threading.Thread(target=server.stop, kwargs={"grace": 8.0}, name="test-stopper")
    stopper.start()
    wait_for(lambda: server.draining and server.addresses == [], what="listeners closed")
    assert stopper.is_alive()   # four connections keep it draining
    t0 = time.monotonic()
    for sock in socks:
        sock.close()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive(), "stop() did not end when the clients left"
    assert time.monotonic() - t0 < 2.0
    made.wait_lost(4, timeout=0)
    assert [exc for _, exc in made.lost] == [None] * 4


def test_stop_from_another_thread(serve, clients):
    made = Made(Echo)
    server = serve(made, workers=3)
    sock = clients.connect(server.addresses[0])
    echo(sock, b"hello")
    done = threading.Event()

    def stop_it() -> None:
        server.stop(grace=0.2)
        done.set()

    stopper = threading.Thread(target=stop_it, name="test-stopper")
    stopper.start()
    assert done.wait(TIMEOUT)
    stopper.join(TIMEOUT)
    assert server.wait_stopped(0)
    assert recv_until_eof(sock) == b""
    assert made.lost == [(made.protocols[0], None)]


def test_stop_from_inside_a_protocol_callback(serve, clients):
    box: dict = {}

    class Stopper(Echo):
        def data_received(self, data: bytes) -> None:
            if data != b"stop":
                return super().data_received(data)
            t0 = time.monotonic()
            box["server"].stop(grace=5.0)  # cannot wait for its own thread: returns at once
            box["took"] = time.monotonic() - t0
            self.transport.write(b"stopping")

    made = Made(Stopper)
    box["server"] = server = serve(made, workers=2)
    sock = clients.connect(server.addresses[0])
    echo(sock, b"first")
    sock.sendall(b"stop")
    assert recv_exactly(sock, 8) == b"stopping"
    assert box["took"] < 0.5
    assert not server.wait_stopped(0.05)   # draining: this connection is still open
    sock.close()
    assert server.wait_stopped(10)
    assert made.lost == [(made.protocols[0], None)]


def test_stop_from_connection_made_with_grace_zero(serve, clients):
    box: dict = {}

    class StopOnConnect(Echo):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            box["server"].stop(0)

    made = Made(StopOnConnect)
    box["server"] = server = serve(made, workers=1)
    sock = clients.connect(server.addresses[0])
    assert server.wait_stopped(10)
    assert recv_until_eof(sock) == b""
    assert made.lost == [(made.protocols[0], None)]


def test_serve_forever_in_a_thread_stopped_from_the_test_thread(clients):
    made = Made(Echo)
    server = Server(made, workers=2)
    errors: list = []

    def run() -> None:
        try:
            server.serve_forever()
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    runner = threading.Thread(target=run, name="test-serve-forever")
    runner.start()
    try:
        wait_for(lambda: server.addresses, what="serve_forever() listening")
        sock = clients.connect(server.addresses[0])
        echo(sock, b"served from a thread")
        assert made.protocols[0].thread.name.startswith("reactorsvc-worker-")
        assert runner.is_alive()
    finally:
        server.stop(grace=0.2)
    runner.join(TIMEOUT)
    assert not runner.is_alive(), "serve_forever() did not return after stop()"
    assert errors == []
    assert recv_until_eof(sock) == b""


def test_stop_is_idempotent_and_start_is_once(serve):
    server = serve(Echo, workers=1)
    with pytest.raises(ReactorError, match="start"):
        server.start()
    server.stop(0)
    server.stop(0)
    assert server.wait_stopped(0)
    with pytest.raises(ReactorError, match="start"):
        server.start()


def test_stop_before_start_and_bad_grace():
    server = Server(Echo, workers=1)
    assert not server.wait_stopped(0)
    with pytest.raises(ValueError, match="grace"):
        server.stop(-1)
    with pytest.raises(TypeError, match="grace"):
        server.stop("soon")
    server.stop(0)
    assert server.wait_stopped(0)
    assert server.stats() == {"workers": [], "supervisor": {}, "listeners": {}}


# -- signals: serve_forever() in a subprocess's main thread -------------------------------------


class Child:
    """serve_script.py in a subprocess, with its stdout lines read by a thread into a queue."""

    def __init__(self, grace: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-u", str(SCRIPT), str(grace)], cwd=REPO,
                                     env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, name="test-child-stdout")
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, needle: str, timeout: float = 10.0) -> str:
        """The first new line containing `needle` (AssertionError after `timeout` s)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {needle!r} after {timeout} s; output: {self.seen}")
            if line is None:
                raise AssertionError(f"child exited before {needle!r}; output: {self.seen}")
            self.seen.append(line)
            if needle in line:
                return line

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        self.proc.stdout.close()
        return rc


def test_sighup_runs_its_handler_and_sigterm_stops_serve_forever_gracefully():
    child = Child(grace=0.5)
    try:
        port = int(child.expect("port ").split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            echo(sock, b"before the signals")
            child.proc.send_signal(signal.SIGHUP)      # extra_signals: handled, serving goes on
            child.expect(f"hup {int(signal.SIGHUP)}")
            echo(sock, b"after SIGHUP")
            t0 = time.monotonic()
            child.proc.send_signal(signal.SIGTERM)
            # The open connection keeps the server draining for the grace, then it is closed.
            assert recv_until_eof(sock) == b""
            assert 0.4 <= time.monotonic() - t0 < 5.0
        child.expect("connection_lost None")
        child.expect("exited")
        assert child.proc.wait(TIMEOUT) == 0
    finally:
        child.close()


def test_a_second_sigint_stops_at_once():
    child = Child(grace=30.0)
    try:
        port = int(child.expect("port ").split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            echo(sock, b"x")
            child.proc.send_signal(signal.SIGINT)
            child.expect("stop_requested")     # structlog's line: draining with a 30 s grace
            t0 = time.monotonic()
            child.proc.send_signal(signal.SIGINT)
            assert recv_until_eof(sock) == b""
            assert time.monotonic() - t0 < 5.0
        child.expect("exited")
        assert child.proc.wait(TIMEOUT) == 0
    finally:
        child.close()
