"""What a protocol object must have (asyncio's rules: eof_received, pause_writing and
resume_writing are optional) and asyncio.BufferedProtocol fed through its own buffer."""

from __future__ import annotations

import asyncio
import socket

import pytest

from reactorsvc.io import Connection, start_server

from .conftest import read_until_eof_or, run_until, small_sndbuf


class ReadmeEcho:  # the README's duck-typed Echo, verbatim shape: no pause/resume_writing
    def connection_made(self, transport): self.transport = transport
    def data_received(self, data): self.transport.write(data)
    def eof_received(self): return False
    def connection_lost(self, exc): pass


class BareEcho:  # not even eof_received: EOF closes, as with asyncio's default
    lost: list = []

    def connection_made(self, transport): self.transport = transport
    def data_received(self, data): self.transport.write(data)
    def connection_lost(self, exc): BareEcho.lost.append(exc)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("cls", [ReadmeEcho, BareEcho])
def test_duck_typed_protocols_without_the_optional_methods_are_served(base, cls):
    BareEcho.lost = []
    listener = start_server(base, cls)
    client = socket.create_connection(listener.addresses[0])
    try:
        client.sendall(b"hello")
        client.shutdown(socket.SHUT_WR)
        got = bytearray()
        read_until_eof_or(base, client, got)
        assert got == b"hello"
        if cls is BareEcho:
            run_until(base, lambda: BareEcho.lost, what="connection_lost")
            assert BareEcho.lost == [None]
    finally:
        client.close()
        listener.close()


@pytest.mark.timeout(10)
def test_a_protocol_without_pause_writing_keeps_its_connection_over_the_high_watermark(base, pair):
    a, b = pair
    proto = ReadmeEcho()
    lost = []
    proto.connection_lost = lost.append
    conn = Connection.start(base, a.dup(), proto)
    run_until(base, lambda: hasattr(proto, "transport"))
    small_sndbuf(conn)
    conn.set_write_buffer_limits(high=1024)
    conn.write(b"x" * (1 << 20))  # crosses the high watermark: pause_writing is missing
    assert conn.get_write_buffer_size() > 1024 and not conn.is_closing()
    got = bytearray()
    read_until_eof_or(base, b, got, enough=1 << 20)  # drains to low: resume_writing missing too
    assert len(got) == 1 << 20 and not lost
    conn.abort()
    run_until(base, lambda: lost)
    assert lost == [None]


def test_required_methods_and_non_callables_are_named(base, pair):
    a, _ = pair

    class NoLost:
        def connection_made(self, t): pass
        def data_received(self, d): pass

    class BadPause(ReadmeEcho):
        pause_writing = 3

    with pytest.raises(TypeError, match="has no callable connection_lost"):
        Connection(base, NoLost())
    with pytest.raises(TypeError, match=r"BadPause.pause_writing is not callable"):
        Connection(base, BadPause())


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, size: int = 7, empty: bool = False) -> None:
        self.buf = bytearray(size)
        self.got = bytearray()
        self.hints: list[int] = []
        self.empty = empty
        self.events: list = []

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def get_buffer(self, sizehint):
        self.hints.append(sizehint)
        return bytearray() if self.empty else self.buf

    def buffer_updated(self, nbytes):
        self.got += self.buf[:nbytes]

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))


@pytest.mark.timeout(10)
def test_buffered_protocol_reads_into_its_own_buffer(base, pair):
    a, b = pair
    proto = Buffered(size=7)
    conn = Connection.start(base, a.dup(), proto)
    payload = bytes(range(256)) * 40
    b.sendall(payload)
    b.shutdown(socket.SHUT_WR)
    run_until(base, lambda: ("lost", None) in proto.events, what="eof and close")
    assert proto.got == payload
    assert proto.events[0] == "made" and proto.events[-2:] == ["eof", ("lost", None)]
    assert set(proto.hints) == {-1}
    assert conn.bytes_in == len(payload)


@pytest.mark.timeout(10)
def test_an_empty_buffer_from_get_buffer_closes_with_the_error(base, pair):
    a, b = pair
    proto = Buffered(empty=True)
    Connection.start(base, a.dup(), proto)
    b.sendall(b"data")
    run_until(base, lambda: any(type(e) is tuple for e in proto.events))
    [(_, exc)] = [e for e in proto.events if type(e) is tuple]
    assert isinstance(exc, RuntimeError) and "empty buffer" in str(exc)


@pytest.mark.timeout(10)
def test_set_protocol_switches_between_plain_and_buffered(base, pair):
    a, b = pair
    first = Buffered(size=4)
    conn = Connection.start(base, a.dup(), first)
    b.sendall(b"abcd")
    run_until(base, lambda: first.got == b"abcd")
    received = []

    class Plain(asyncio.Protocol):
        def data_received(self, data): received.append(data)

    conn.set_protocol(Plain())
    b.sendall(b"efgh")
    run_until(base, lambda: b"".join(received) == b"efgh")
    second = Buffered(size=64)
    conn.set_protocol(second)
    b.sendall(b"ijkl")
    run_until(base, lambda: second.got == b"ijkl")
    assert first.got == b"abcd"
    conn.abort()
    run_until(base, lambda: ("lost", None) in second.events)
