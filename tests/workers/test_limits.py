"""Load and limits: handoffs while every worker is busy, max_connections, idle_timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ..helpers import TIMEOUT, echo, recv_exactly, recv_until_eof, wait_for
from .conftest import Echo, Made, worker_stats


def test_handoffs_go_on_while_every_worker_is_busy_in_a_slow_callback(serve, clients):
    release = threading.Event()
    entered = threading.Semaphore(0)

    class Slow(Echo):
        def data_received(self, data: bytes) -> None:
            if data == b"block":
                entered.release()
                release.wait(TIMEOUT)   # the slow callback: its worker runs nothing else
            super().data_received(data)

    server = serve(Made(Slow), workers=2)
    address = server.addresses[0]
    blockers = [clients.connect(address) for _ in range(2)]   # one per worker (round robin)
    for sock in blockers:
        sock.sendall(b"block")
    for _ in blockers:
        assert entered.acquire(timeout=TIMEOUT), "a worker never entered the slow callback"
    waiting = [clients.connect(address) for _ in range(6)]
    for sock in waiting:
        sock.sendall(b"hello")
    # The supervisor accepts and hands off although no worker can take the sockets yet.
    wait_for(lambda: server.stats()["supervisor"]["handoffs"] == 8, what="8 handoffs")
    stats = server.stats()
    assert stats["supervisor"]["accepts"] == 8
    assert [w["handoffs_in_flight"] for w in stats["workers"]] == [3, 3]
    assert [w["connections_total"] for w in stats["workers"]] == [1, 1]
    release.set()
    for sock in waiting:
        assert recv_exactly(sock, 5) == b"hello"
    for sock in blockers:
        assert recv_exactly(sock, 5) == b"block"
    assert worker_stats(server, "connections_total") == [4, 4]
    assert worker_stats(server, "handoffs_in_flight") == [0, 0]


def test_max_connections_keeps_extra_clients_in_the_backlog_until_one_closes(serve, clients):
    server = serve(Made(Echo), workers=2, max_connections=2)
    address = server.addresses[0]
    first, second = clients.connect(address), clients.connect(address)
    echo(first, b"one")
    echo(second, b"two")
    third = clients.connect(address)          # the kernel completes it; nobody accepts it
    third.sendall(b"three")
    third.settimeout(0.3)                     # bounded proof of absence
    with pytest.raises(socket.timeout):
        third.recv(16)
    wait_for(lambda: server.stats()["supervisor"]["accept_pauses"] == 1, what="a pause")
    sup = server.stats()["supervisor"]
    assert (sup["accepts"], sup["handoffs"], sup["accept_pauses"], sup["rejected"]) == (2, 2, 1, 0)
    first.close()
    third.settimeout(TIMEOUT)
    assert recv_exactly(third, 5) == b"three"
    echo(second, b"still two")
    # Accepting the third took the listener to the limit again: a second pause. (The echo may
    # come back before the supervisor thread has finished counting: wait for the counters.)
    wait_for(lambda: server.stats()["supervisor"]["accept_pauses"] == 2, what="second pause")
    sup = server.stats()["supervisor"]
    assert (sup["accepts"], sup["handoffs"], sup["accept_pauses"]) == (3, 3, 2)
    assert sum(worker_stats(server, "connections")) == 2


def test_idle_timeout_closes_a_silent_connection(serve, clients):
    made = Made(Echo)
    server = serve(made, workers=1, idle_timeout=0.2)
    sock = clients.connect(server.addresses[0])
    t0 = time.monotonic()
    echo(sock, b"then silence")
    assert recv_until_eof(sock) == b""
    assert 0.15 <= time.monotonic() - t0 < 3.0
    made.wait_lost(1)
    [(_, exc)] = made.lost
    assert isinstance(exc, TimeoutError)
