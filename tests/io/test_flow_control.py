"""Write flow control: watermarks as asyncio's, 64 MiB both ways in bounded memory, a client
that never reads."""

from __future__ import annotations

import asyncio
import os
import socket
import zlib

import reactorsvc
from reactorsvc.io import connect

from .conftest import Recorder, read_available, read_until_eof_or, run_for, run_until

HIGH, LOW = 64 * 1024, 16 * 1024


class Producer(asyncio.Protocol):
    """Client: sends `total` bytes in `chunk` writes while not paused, then write_eof();
    checksums what it sends and what comes back; tracks its largest write buffer."""

    def __init__(self, total: int, chunk: int = 16384) -> None:
        self.total, self.chunk = total, chunk
        self.block = os.urandom(1 << 20)
        self.sent = self.received = 0
        self.sent_crc = self.recv_crc = 0
        self.paused = False
        self.pauses = self.resumes = 0
        self.max_buffer = 0
        self.done = False
        self.exc = "not lost"

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._produce()

    def _produce(self) -> None:
        t = self.transport
        while not self.paused and self.sent < self.total:
            off = self.sent % len(self.block)
            data = self.block[off:off + min(self.chunk, self.total - self.sent)]
            self.sent_crc = zlib.crc32(data, self.sent_crc)
            self.sent += len(data)
            t.write(data)
            self.max_buffer = max(self.max_buffer, t.get_write_buffer_size())
        if self.sent >= self.total and not self.done:
            self.done = True
            t.write_eof()

    def pause_writing(self) -> None:
        assert self.transport.get_write_buffer_size() > HIGH
        self.paused = True
        self.pauses += 1

    def resume_writing(self) -> None:
        assert self.transport.get_write_buffer_size() <= LOW
        self.paused = False
        self.resumes += 1
        self._produce()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.recv_crc = zlib.crc32(data, self.recv_crc)

    def connection_lost(self, exc) -> None:
        self.exc = exc


class TrackingEcho(asyncio.Protocol):
    """Echo that stops reading while its output is paused; tracks its largest write buffer."""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.max_buffer = self.pauses = 0
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)
        self.max_buffer = max(self.max_buffer, self.transport.get_write_buffer_size())

    def eof_received(self):
        return False

    def pause_writing(self) -> None:
        self.pauses += 1
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def connection_lost(self, exc) -> None:
        self.lost = True


def test_64_mib_both_ways_with_bounded_buffers(base, server_factory):
    srv = server_factory(make=TrackingEcho)
    total = 64 << 20
    client = Producer(total)
    transport = connect(base, lambda: client, *srv.address)
    run_until(base, lambda: client.exc != "not lost" and srv.protocols[0].lost, timeout=30,
              what="64 MiB echoed")
    server = srv.protocols[0]
    assert client.exc is None
    assert client.received == total and client.recv_crc == client.sent_crc
    assert transport.bytes_out == total and transport.bytes_in == total
    # Each side's buffer stays near the high watermark: at most one write beyond it.
    assert client.pauses >= 1 and client.resumes == client.pauses
    assert HIGH < client.max_buffer <= HIGH + client.chunk
    assert server.max_buffer <= HIGH + 64 * 1024


class Flood(Recorder):
    """Server: writes 64 KiB chunks while allowed; records the buffer size at each pause."""

    chunk = b"\xab" * 65536

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.paused = False
        self.written = 0
        self.sizes_at_pause: list[int] = []
        self.sizes_at_resume: list[int] = []
        self.resume_writing()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.sizes_at_pause.append(self.transport.get_write_buffer_size())
        self.paused = True

    def resume_writing(self) -> None:
        if self.events[-1] != ("made",):
            super().resume_writing()
            self.sizes_at_resume.append(self.transport.get_write_buffer_size())
        self.paused = False
        while not self.paused and not self.transport.is_closing():
            self.transport.write(self.chunk)
            self.written += len(self.chunk)


def test_client_that_never_reads_pauses_the_writer(base, server_factory):
    srv = server_factory(make=Flood)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client.connect(srv.address)
    run_until(base, lambda: srv.protocols and srv.protocols[0].paused)
    proto = srv.protocols[0]
    t = proto.transport
    # pause_writing came from inside the write() that crossed the high watermark.
    assert proto.sizes_at_pause == [t.get_write_buffer_size()]
    assert HIGH < t.get_write_buffer_size() <= HIGH + 65536
    written_when_paused = proto.written
    run_for(base, 0.2)  # the client keeps not reading: nothing moves, nothing grows
    assert proto.names() == ["made", "pause"]
    assert proto.written == written_when_paused
    assert t.get_write_buffer_size() <= HIGH + 65536
    # Once the client reads, the buffer drains to the low watermark and writing resumes.
    got = bytearray()
    read_until_eof_or(base, client, got, enough=4 << 20)
    assert proto.names().count("resume") >= 1
    assert all(size <= LOW for size in proto.sizes_at_resume)
    assert all(HIGH < size <= HIGH + 65536 for size in proto.sizes_at_pause)
    assert set(got) == {0xab}
    t.abort()
    run_until(base, lambda: proto.lost)
    client.close()


def test_set_write_buffer_limits_pauses_at_once_when_over(base, server_factory):
    srv = server_factory(make=Flood)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client.connect(srv.address)
    run_until(base, lambda: srv.protocols and srv.protocols[0].paused)
    proto = srv.protocols[0]
    t = proto.transport
    t.set_write_buffer_limits(high=t.get_write_buffer_size() + 1)  # under: resumes later
    assert t.get_write_buffer_limits()[1] == t.get_write_buffer_size() + 1
    client.setblocking(False)
    got = bytearray()
    # low is now high // 4: resume_writing comes when the buffer drains to it.
    run_until(base, lambda: ("resume",) in proto.events or read_available(client, got))
    t.set_write_buffer_limits(high=0)
    assert proto.events[-1] == ("pause",)  # over the new high mark: paused at once
    t.abort()
    run_until(base, lambda: proto.lost)
    client.close()


def test_writes_queue_in_order_behind_a_full_kernel_buffer(base):
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    proto = Recorder()
    conn = reactorsvc.io.Connection.start(base, a, proto)
    run_until(base, lambda: proto.events)
    pieces = [bytes([i]) * 5000 for i in range(40)]
    for piece in pieces:
        conn.write(piece)
    assert conn.get_write_buffer_size() > 0
    conn.write(bytearray(b"tail"))
    conn.close()
    got = bytearray()
    read_until_eof_or(base, b, got)
    assert got == b"".join(pieces) + b"tail"
    run_until(base, lambda: proto.lost)
    b.close()
