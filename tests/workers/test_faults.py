"""Failure containment: a protocol that raises loses only its connection; a worker killed by an
injected fault is replaced and the server keeps serving."""

from __future__ import annotations

import socket

import pytest

from ..helpers import TIMEOUT, echo, recv_until_eof, wait_for
from .conftest import Echo, Made, WhoAmI, who


class Boom(Echo):
    """Raises ValueError in the callback named `where` (data_received: on b"boom" only)."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.where == "connection_made":
            raise ValueError("boom in connection_made")

    def data_received(self, data: bytes) -> None:
        if self.where == "data_received" and data == b"boom":
            raise ValueError("boom in data_received")
        super().data_received(data)

    def eof_received(self) -> bool:
        super().eof_received()
        if self.where == "eof_received":
            raise ValueError("boom in eof_received")
        return True   # never reached by the victim; keeps others half-open


@pytest.mark.parametrize("where", ["connection_made", "data_received", "eof_received"])
def test_a_protocol_that_raises_loses_its_connection_and_the_worker_goes_on(serve, clients, where):
    kinds = iter([Echo, lambda: Boom(where), Echo])
    made = Made(lambda: next(kinds)())
    server = serve(made, workers=1)
    address = server.addresses[0]
    good = clients.connect(address)
    echo(good, b"before")
    victim = clients.connect(address)
    if where == "data_received":
        victim.sendall(b"boom")
    elif where == "eof_received":
        victim.shutdown(socket.SHUT_WR)
    assert recv_until_eof(victim) == b""
    made.wait_lost(1)
    [(proto, exc)] = made.lost
    assert proto is made.protocols[1]
    assert isinstance(exc, ValueError) and str(exc) == f"boom in {where}"
    assert proto.names()[-1] == "lost" and proto.names().count("lost") == 1
    echo(good, b"after")
    late = clients.connect(address)
    echo(late, b"a new connection on the same worker")
    stats = server.stats()
    assert stats["workers"][0]["alive"] and stats["workers"][0]["connections_total"] == 3
    assert stats["supervisor"]["worker_restarts"] == 0


def test_a_protocol_factory_that_raises_drops_only_that_connection(serve, clients):
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("factory failed")
        return Echo()

    server = serve(factory, workers=1)
    first = clients.connect(server.addresses[0])
    assert recv_until_eof(first) == b""
    second = clients.connect(server.addresses[0])
    echo(second, b"fine")
    [worker] = server.stats()["workers"]
    assert (worker["errors"], worker["connections_total"], worker["alive"]) == (1, 1, True)


@pytest.mark.parametrize("fault", [SystemExit, KeyboardInterrupt])
def test_a_worker_killed_by_an_injected_fault_is_replaced(serve, clients, fault):
    made = Made(WhoAmI)
    server = serve(made, workers=2)
    address = server.addresses[0]
    doomed = clients.connect(address)
    assert who(doomed) == 0
    other = clients.connect(address)
    assert who(other) == 1
    dead = server._sup.workers[0]
    old_thread = dead.thread

    def inject() -> None:
        raise fault("injected")

    dead.base.call_soon_threadsafe(inject)
    wait_for(lambda: server.stats()["supervisor"]["worker_restarts"] == 1, what="a restart")
    old_thread.join(TIMEOUT)
    assert not old_thread.is_alive()
    fresh = server._sup.workers[0]
    assert fresh is not dead and fresh.thread is not old_thread and fresh.thread.is_alive()
    assert fresh.index == 0 and fresh.thread.name == "reactorsvc-worker-0"
    # The dead worker's connection is closed; the other worker never noticed.
    assert recv_until_eof(doomed) == b""
    echo(other, b"still served")
    # New connections are served by both workers, the fresh one included (round robin goes on).
    late = [clients.connect(address) for _ in range(4)]
    assert [who(s) for s in late] == [0, 1, 0, 1]
    for sock in late:
        echo(sock, b"ok")
    stats = server.stats()
    assert [w["alive"] for w in stats["workers"]] == [True, True]
    # The fresh worker carries its predecessor's totals on (1 connection, closed with an
    # error), so the totals never go backwards: 1 + 2 new on worker 0, 1 + 2 on worker 1.
    assert [w["connections_total"] for w in stats["workers"]] == [3, 3]
    assert stats["workers"][0]["errors"] == 1
    assert stats["supervisor"]["worker_restarts"] == 1
