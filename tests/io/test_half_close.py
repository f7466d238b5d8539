"""Half-close both ways: the peer's EOF with eof_received() -> True, and write_eof()."""

from __future__ import annotations

import socket

import pytest

from reactorsvc.base.flags import EVLOOP_NONBLOCK

from .conftest import Recorder, read_until_eof_or, run_until, small_sndbuf


def test_eof_received_true_keeps_the_connection_half_open(base, server_factory):
    srv = server_factory(make=lambda: Recorder(keep_open=True))
    client = socket.create_connection(srv.address)
    client.sendall(b"question")
    client.shutdown(socket.SHUT_WR)
    run_until(base, lambda: srv.protocols and ("eof",) in srv.protocols[0].events)
    proto = srv.protocols[0]
    assert not proto.transport.is_closing()
    proto.transport.write(b"answer after your EOF")
    proto.transport.close()
    run_until(base, lambda: proto.lost)
    client.settimeout(5)
    assert client.recv(100) == b"answer after your EOF"
    assert client.recv(100) == b""
    assert proto.names() == ["made", "data", "eof", "lost"]
    client.close()


def test_write_eof_half_closes_and_reading_goes_on(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    client.settimeout(5)
    run_until(base, lambda: srv.protocols)
    transport = srv.protocols[0].transport
    assert transport.can_write_eof()
    transport.write(b"greeting")
    transport.write_eof()
    with pytest.raises(RuntimeError, match="write_eof"):
        transport.write(b"more")
    base.loop(EVLOOP_NONBLOCK)
    assert client.recv(100) == b"greeting"
    assert client.recv(100) == b""  # the server's write side is shut
    client.sendall(b"late data")     # ... but it still reads
    run_until(base, lambda: srv.protocols[0].data == b"late data")
    client.close()
    run_until(base, lambda: srv.protocols[0].lost)
    assert srv.protocols[0].names() == ["made", "data", "eof", "lost"]


def test_write_eof_waits_for_the_queued_data(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    transport = srv.protocols[0].transport
    small_sndbuf(transport)
    payload = bytes(range(256)) * 16384  # 4 MiB: more than the socket buffers hold
    transport.write(payload)
    assert transport.get_write_buffer_size() > 0
    transport.write_eof()
    got = bytearray()
    read_until_eof_or(base, client, got)
    assert got == payload
    transport.close()
    run_until(base, lambda: srv.protocols[0].lost)
    client.close()
