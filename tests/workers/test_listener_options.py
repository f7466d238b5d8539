"""ListenerOptions: one value, checked once, reaching the Listener and every Connection unchanged;
Server.replace_listeners as a transaction (bind first, swap, or change nothing)."""

from __future__ import annotations

import socket

import pytest

from reactorsvc import Server
from reactorsvc._checks import MAX_SECONDS
from reactorsvc.io.options import ListenerOptions

from ..helpers import echo, recv_exactly, wait_for
from .conftest import Echo, Made


@pytest.mark.parametrize("kwargs, error, message", [
    ({"backlog": -1}, ValueError, "backlog -1 out of range 0..65535"),
    ({"backlog": 1.0}, TypeError, "backlog must be an int, not float"),
    ({"reuse_port": 1}, TypeError, "reuse_port must be a bool, not int"),
    ({"max_connections": 0}, ValueError, "max_connections must be at least 1, got 0"),
    ({"idle_timeout": 0}, ValueError, "idle_timeout must be a finite number of seconds > 0"),
    ({"read_timeout": "1"}, TypeError, "read_timeout must be a number of seconds or None"),
    ({"write_timeout": MAX_SECONDS * 2}, ValueError, "write_timeout must be at most"),
    ({"idle_timeout": 10 ** 400}, ValueError, "idle_timeout must be a finite number"),
    ({"write_buffer_high": 10, "write_buffer_low": 11}, ValueError,
     "write_buffer_low 11 is above write_buffer_high 10"),
    ({"write_buffer_low": -1}, ValueError, "write_buffer_low must be at least 0, got -1"),
])
def test_options_check_themselves_naming_the_field(kwargs, error, message):
    with pytest.raises(error, match=message) as info:
        ListenerOptions(**kwargs)
    assert info.value.argument in kwargs


def test_watermarks_follow_asyncio_and_equal_inputs_compare_equal():
    assert (ListenerOptions().write_buffer_high, ListenerOptions().write_buffer_low) == \
        (65536, 16384)
    assert ListenerOptions(write_buffer_low=100) == ListenerOptions(write_buffer_high=400)
    assert ListenerOptions(idle_timeout=5).idle_timeout == 5.0


def test_server_keywords_build_the_same_options():
    server = Server(Echo, backlog=7, max_connections=3, idle_timeout=2, reuse_port=True)
    [spec] = server._pending
    assert spec.options == ListenerOptions(backlog=7, max_connections=3, idle_timeout=2.0,
                                           reuse_port=True)
    with pytest.raises(ValueError, match="max_connections must be at least 1"):
        Server(Echo, max_connections=0)


def test_options_reach_every_connection(serve, clients):
    """The worker's Connection gets the listener's watermarks and timeouts, unchanged."""
    made = Made(Echo)
    server = serve(None, workers=1)
    options = ListenerOptions(idle_timeout=30, write_buffer_high=1000, write_buffer_low=10)
    [address] = server.add_listener("opts", made, where=("127.0.0.1", 0), options=options)
    echo(clients.connect(address), b"x")
    wait_for(lambda: made.protocols and made.protocols[0].transport is not None)
    transport = made.protocols[0].transport
    assert transport.get_write_buffer_limits() == (10, 1000)
    assert transport._idle_timeout == 30.0


def _bound(port: int = 0) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def test_replace_listeners_binds_first_and_changes_nothing_on_failure(serve, clients):
    server = serve(Echo, workers=1)
    [old] = server.addresses
    with _bound() as busy:
        taken = busy.getsockname()
        with pytest.raises(OSError) as info:
            server.replace_listeners([("default", Echo, old, ListenerOptions()),
                                      ("new", Echo, taken, ListenerOptions())])
        assert info.value.listener == "new"
    assert server.listener_names() == ["default"]
    echo(clients.connect(old), b"still serving")


def test_replace_listeners_keeps_sockets_renames_and_changes_limits(serve, clients):
    server = serve(Echo, workers=1, max_connections=1)
    [address] = server.addresses
    first = clients.connect(address)
    echo(first, b"1")
    second = clients.connect(address)
    second.sendall(b"2")   # held in the backlog at max_connections=1
    made = Made(Echo)
    server.replace_listeners([("renamed", made, address,
                               ListenerOptions(max_connections=3, idle_timeout=40))])
    assert recv_exactly(second, 1) == b"2"
    assert server.listener_names() == ["renamed"] and server.addresses == [address]
    echo(first, b"the first connection was never touched")
    echo(clients.connect(address), b"a new one gets the new options")
    wait_for(lambda: any(p.transport is not None for p in made.protocols))
    assert [p.transport._idle_timeout for p in made.protocols] == [40.0, 40.0]


def test_replace_listeners_refuses_a_reuse_port_change(serve):
    server = serve(Echo, workers=1)
    [address] = server.addresses
    with pytest.raises(ValueError, match="reuse_port cannot change") as info:
        server.replace_listeners([("default", Echo, address, ListenerOptions(reuse_port=True))])
    assert info.value.listener == "default"


def test_listener_set_options_applies_limits_and_refuses_reuse_port():
    from reactorsvc import EventBase
    from reactorsvc.io.listener import Listener
    with EventBase() as base:
        listener = Listener(base, ("127.0.0.1", 0), lambda sock, addr: sock.close(),
                            options=ListenerOptions(backlog=8))
        try:
            listener.set_options(ListenerOptions(backlog=16, max_connections=1))
            assert listener.options.backlog == 16 and listener.options.max_connections == 1
            with pytest.raises(ValueError, match="reuse_port cannot change"):
                listener.set_options(ListenerOptions(reuse_port=True))
            assert listener.options.max_connections == 1  # the refused change changed nothing
        finally:
            listener.close()
