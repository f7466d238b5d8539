"""Out of file descriptors: the listener backs off instead of spinning, keeps serving the
connections it has, and accepts again once fds are free (server in a subprocess with a low
RLIMIT_NOFILE, clients here)."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..helpers import echo_roundtrip, subprocess_env, wait_for

HELPER = Path(__file__).with_name("emfile_server.py")
NOFILE = 32          # the child's fd limit: ~25 connections after its own fds
EXTRA_CLIENTS = 8    # more clients than it can hold, but fewer waiting than it frees later


def _readline(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise AssertionError(f"the server process said nothing for {timeout} s")
    line = proc.stdout.readline()
    assert line, f"the server process exited: {proc.stderr.read()}"
    return line.strip()


def _stats(proc: subprocess.Popen) -> dict:
    proc.stdin.write("stats\n")
    proc.stdin.flush()
    return json.loads(_readline(proc))


def _wait_stats(proc, cond, timeout: float = 5.0) -> dict:
    """Poll the server process's stats until cond(stats) holds; those stats."""
    last: dict = {}

    def matching() -> dict | None:
        last["stats"] = _stats(proc)
        return last["stats"] if cond(last["stats"]) else None

    return wait_for(matching, timeout, lambda: f"server stats to get there: {last['stats']}",
                    interval=0.02)


@pytest.fixture
def server_process():
    proc = subprocess.Popen([sys.executable, str(HELPER), str(NOFILE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())
    try:
        line = _readline(proc)
        assert line.startswith("port "), line
        yield proc, int(line.split()[1])
    finally:
        if proc.poll() is None:
            try:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                f.close()


def test_emfile_backs_off_keeps_serving_and_recovers(server_process):
    proc, port = server_process
    clients: list[socket.socket] = []
    try:
        # Connect until the server runs out of fds (it accepts in order, FIFO).
        for _ in range(NOFILE + EXTRA_CLIENTS):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        stats = _wait_stats(proc, lambda s: s["counters"]["emfile"] >= 1)
        assert stats["overloaded"]
        served = stats["counters"]["accepts"]
        assert 10 < served < len(clients)
        assert stats["counters"]["open"] == served
        for i, c in enumerate(clients[:served]):
            assert echo_roundtrip(c, b"hello %d" % i) == b"hello %d" % i

        # Two seconds of overload: the accepted connections keep working, and the server
        # spends well under 0.5 s of CPU (a spinning accept loop would burn ~2 s).
        cpu_before = _stats(proc)["cpu"]
        end = time.monotonic() + 2.0
        rounds = 0
        while time.monotonic() < end:
            assert echo_roundtrip(clients[rounds % served], b"still served") == b"still served"
            rounds += 1
            select.select([], [], [], 0.1)  # paced traffic: the subject here is time passing
        stats = _stats(proc)
        assert stats["cpu"] - cpu_before < 0.5, stats
        assert stats["counters"]["accepts"] == served  # nobody new got in meanwhile
        assert stats["counters"]["emfile"] >= 2        # it did retry, from its backoff timer
        assert stats["counters"]["emfile"] <= 10       # ... 0.1 s doubling to 1 s, not a spin

        # Free fds: the waiting clients get accepted and served.
        for c in clients[:served]:
            c.close()
        _wait_stats(proc, lambda s: s["counters"]["accepts"] == len(clients), timeout=10)
        for i, c in enumerate(clients[served:]):
            assert echo_roundtrip(c, b"late %d" % i) == b"late %d" % i
        # The burst ends when a retry finds the backlog empty.
        _wait_stats(proc, lambda s: not s["overloaded"])
    finally:
        for c in clients:
            c.close()
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    assert proc.wait(10) == 0
    log = proc.stderr.read()
    # Logged once for the whole burst, and once when it ended.
    assert log.count("accept_failed_backing_off") == 1, log
    assert log.count("accept_resumed") == 1, log
