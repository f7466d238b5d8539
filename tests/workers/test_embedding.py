"""Embedding: already-bound sockets, listeners added and removed at run time, backend choice,
stats() fields, argument validation, the public names."""

from __future__ import annotations

import socket

import pytest

import reactorsvc
from reactorsvc import EventConfig, supported_methods
from reactorsvc.workers.server import Server

from ..helpers import echo, recv_exactly, recv_until_eof, wait_for
from .conftest import Echo, Made, worker_stats


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_server_and_protocol_are_public_names():
    assert reactorsvc.Server is Server
    assert reactorsvc.Protocol is reactorsvc.io.Protocol


def test_serves_an_already_bound_socket(serve, clients):
    sock = _bound_socket()
    try:
        server = serve(Made(Echo), workers=2, sockets=[sock])
        assert server.addresses == [sock.getsockname()]
        conn = clients.connect(server.addresses[0])
        echo(conn, b"over an inherited socket")
        server.stop(0)
        assert sock.fileno() == -1   # the server took the socket over and closed it
    finally:   # only if the test failed early: the server owns it while it runs
        sock.close()


def test_serves_several_already_bound_sockets(serve, clients):
    socks = [_bound_socket(), _bound_socket()]
    try:
        server = serve(Made(Echo), workers=2, sockets=socks)
        assert sorted(server.addresses) == sorted(s.getsockname() for s in socks)
        for address in server.addresses:
            echo(clients.connect(address), b"hello %d" % address[1])
        server.stop(0)
        assert [s.fileno() for s in socks] == [-1, -1]
    finally:   # only if the test failed early: the server owns them while it runs
        for sock in socks:
            sock.close()


class Upper(Echo):
    def data_received(self, data: bytes) -> None:
        self.calls.append(("data", data))
        self.transport.write(data.upper())


def test_add_and_remove_a_listener_at_run_time(serve, clients, tmp_path):
    server = serve(Made(Echo), workers=2)
    [added] = server.add_listener("upper", Upper, where=("127.0.0.1", 0))
    assert len(server.addresses) == 2 and added in server.addresses
    path = str(tmp_path / "upper.sock")
    assert server.add_listener("unix", Upper, where=path) == [path]
    with pytest.raises(ValueError, match="upper"):
        server.add_listener("upper", Upper, where=("127.0.0.1", 0))
    upper = clients.connect(added)
    upper.sendall(b"shout")
    assert recv_exactly(upper, 5) == b"SHOUT"
    unix = socket.socket(socket.AF_UNIX)
    clients.socks.append(unix)
    unix.settimeout(5.0)
    unix.connect(path)
    unix.sendall(b"unix")
    assert recv_exactly(unix, 4) == b"UNIX"
    server.remove_listener("upper")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(added, timeout=5.0).close()
    upper.sendall(b"still open")   # connections of a removed listener stay
    assert recv_exactly(upper, 10) == b"STILL OPEN"
    assert len(server.addresses) == 2   # default + unix
    server.stop(0)
    assert not (tmp_path / "upper.sock").exists()


@pytest.mark.skipif(len(supported_methods()) < 2, reason="one backend only")
def test_event_config_picks_the_backend_of_every_base(serve):
    avoided = supported_methods()[0]

    def config() -> EventConfig:
        cfg = EventConfig()
        cfg.avoid_method(avoided)
        return cfg

    server = serve(Echo, workers=2, event_config=config)
    names = [name for name, _ in server.bases()]
    assert names == ["supervisor", "worker-0", "worker-1"]
    assert {base.method for _, base in server.bases()} == {supported_methods()[1]}


def test_stats_counts_a_known_exchange_exactly(serve, clients):
    made = Made(Echo)
    server = serve(made, workers=2)
    address = server.addresses[0]
    first = clients.connect(address)      # worker 0
    for i in range(10):
        echo(first, bytes([i]) * 100)
    second = clients.connect(address)     # worker 1
    echo(second, b"b" * 7)
    # Worker 0 is in its loop now, so this handoff has to wake it through its notifier.
    third = clients.connect(address)      # worker 0
    echo(third, b"c" * 24)
    wait_for(lambda: worker_stats(server, "bytes_out") == [1024, 7], what="bytes_out counted")
    # The supervisor counts a handoff after handing off: the echo may have come back first.
    wait_for(lambda: server.stats()["supervisor"]["handoffs"] == 3, what="handoffs counted")
    stats = server.stats()
    w0, w1 = stats["workers"]
    assert (w0["connections"], w0["connections_total"], w0["bytes_in"]) == (2, 2, 1024)
    assert (w1["connections"], w1["connections_total"], w1["bytes_in"]) == (1, 1, 7)
    assert w0["wakeups"] > 0 and w0["callbacks"] >= 12 and w0["iterations"] > 0
    assert [w["index"] for w in stats["workers"]] == [0, 1]
    assert [w["handoffs_in_flight"] for w in stats["workers"]] == [0, 0]
    assert stats["supervisor"] == {"accepts": 3, "handoffs": 3, "rejected": 0, "errors": 0,
                                   "accept_pauses": 0, "worker_restarts": 0}
    [(name, listener)] = stats["listeners"].items()   # per listener, by its name
    assert listener == {"accepts": 3, "rejected": 0, "accept_pauses": 0, "emfile": 0,
                        "accept_errors": 0, "open": 3}, name
    for sock in (first, second, third):
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b""
    made.wait_lost(3)
    server.stop(0)
    # Closed connections keep counting.
    assert worker_stats(server, "connections") == [0, 0]
    assert worker_stats(server, "bytes_in") == [1024, 7]
    assert worker_stats(server, "bytes_out") == [1024, 7]


def _start(**kwargs) -> None:
    """Construct and start a Server with bad arguments: one of the two must raise."""
    server = Server(Echo, **kwargs)
    try:
        server.start()
    finally:
        server.stop(0)


BAD_ARGUMENTS = [
    ({"workers": 0}, ValueError, "workers"),
    ({"workers": -2}, ValueError, "workers"),
    ({"workers": "4"}, TypeError, "workers"),
    ({"workers": True}, TypeError, "workers"),
    ({"dispatch": "nope"}, ValueError, "dispatch"),
    ({"dispatch": 3}, (TypeError, ValueError), "dispatch"),
    ({"backlog": "x"}, TypeError, "backlog"),
    ({"backlog": -1}, ValueError, "backlog"),
    ({"max_connections": 0}, ValueError, "max_connections"),
    ({"max_connections": 1.5}, TypeError, "max_connections"),
    ({"idle_timeout": -1}, ValueError, "idle_timeout"),
    ({"idle_timeout": "x"}, TypeError, "idle_timeout"),
    ({"event_config": 5}, TypeError, "event_config"),
    ({"port": -1}, ValueError, "port"),
    ({"port": "80"}, TypeError, "port"),
    ({"host": 5}, TypeError, "host"),
    ({"reuse_port": "yes"}, TypeError, "reuse_port"),
    ({"sockets": 5}, TypeError, "sockets"),
    ({"sockets": [object()]}, TypeError, "sockets"),
]


@pytest.mark.parametrize("kwargs, error, name", BAD_ARGUMENTS,
                         ids=[f"{k}={type(v).__name__}:{v}"[:40]
                              for (kw, _, _) in BAD_ARGUMENTS for k, v in kw.items()])
def test_bad_arguments_raise_naming_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        _start(**kwargs)


def test_bad_protocol_factory_and_datagram_socket():
    with pytest.raises(TypeError, match="protocol_factory"):
        Server(42)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError, match="SOCK_STREAM"):
            _start(sockets=[udp])


def test_a_failed_start_leaves_nothing_running():
    with _bound_socket() as taken:
        taken.listen(1)
        server = Server(Echo, workers=2, port=taken.getsockname()[1])
        with pytest.raises(OSError, match=str(taken.getsockname()[1])):
            server.start()
        assert server.addresses == [] and server.stats() == {"workers": [], "supervisor": {}, "listeners": {}}
        server.stop(0)
