"""Datagram endpoints: asyncio.DatagramProtocol classes unchanged, ICMP errors, the send queue
under EAGAIN with watermarks, truncated datagrams, close/abort, extra info, argument checks."""

from __future__ import annotations

import asyncio
import errno
import socket
import threading

import pytest

import reactorsvc
from reactorsvc.io import DatagramTransport, open_datagram_endpoint

from .conftest import run_until


# The asyncio documentation's "UDP Echo Server" protocol, unchanged (print removed).
class EchoServerProtocol:
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        message = data.decode()
        self.transport.sendto(data, addr)


class Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.events: list = []
        self.threads: set = set()

    def connection_made(self, transport):
        self.transport = transport
        self.threads.add(threading.get_ident())
        self.events.append(("made",))

    def datagram_received(self, data, addr):
        self.threads.add(threading.get_ident())
        self.events.append(("data", data, addr))

    def error_received(self, exc):
        self.events.append(("error", exc))

    def connection_lost(self, exc):
        self.threads.add(threading.get_ident())
        self.events.append(("lost", exc))

    def pause_writing(self):
        self.events.append(("pause",))

    def resume_writing(self):
        self.events.append(("resume",))

    def of(self, kind: str) -> list:
        return [e for e in self.events if e[0] == kind]


@pytest.fixture
def udp_client():
    socks = []

    def make(family=socket.AF_INET):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(5)
        socks.append(s)
        return s

    yield make
    for s in socks:
        s.close()


@pytest.mark.timeout(10)
def test_asyncio_docs_udp_echo_server_runs_unchanged(base, udp_client):
    transport = open_datagram_endpoint(base, EchoServerProtocol, local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")
    client = udp_client()
    replies = []
    watch = reactorsvc.Event(base, client.fileno(), reactorsvc.EV_READ | reactorsvc.EV_PERSIST,
                             lambda fd, what, arg: replies.append(client.recvfrom(65536)))
    watch.add()
    try:
        for i in range(3):
            client.sendto(b"ping %d" % i, address)
        run_until(base, lambda: len(replies) == 3)
    finally:
        watch.delete()
    assert sorted(r[0] for r in replies) == [b"ping 0", b"ping 1", b"ping 2"]
    assert {r[1] for r in replies} == {address}
    transport.close()
    run_until(base, lambda: transport._lost and transport._read_ev is None)


@pytest.mark.timeout(10)
def test_connected_endpoint_gets_icmp_errors_and_stays_open(base, udp_client):
    gone = udp_client()
    gone.bind(("127.0.0.1", 0))
    dead_port = gone.getsockname()[1]
    gone.close()
    proto = Recorder()
    opened = []
    # Opened from another thread: every callback still runs in the loop's thread.
    t = threading.Thread(target=lambda: opened.append(open_datagram_endpoint(
        base, lambda: proto, remote_addr=("127.0.0.1", dead_port))))
    t.start()
    t.join(5)
    [transport] = opened
    assert transport.get_extra_info("peername") == ("127.0.0.1", dead_port)
    run_until(base, lambda: proto.of("made"))
    transport.sendto(b"anyone?")
    run_until(base, lambda: proto.of("error"), what="error_received")
    [(_, exc)] = proto.of("error")
    assert isinstance(exc, ConnectionRefusedError)
    assert not transport.is_closing()
    with pytest.raises(ValueError, match="addr must be None or"):
        transport.sendto(b"x", ("127.0.0.1", 1))
    transport.abort()
    run_until(base, lambda: proto.of("lost"))
    assert proto.of("lost") == [("lost", None)] and proto.threads == {threading.get_ident()}


def _unix_pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setblocking(False)
    return a, b


@pytest.mark.timeout(10)
def test_eagain_queues_with_watermarks_then_flushes_in_order(base):
    a, b = _unix_pair()  # a Unix datagram peer that does not read: sends hit EAGAIN
    try:
        proto = Recorder()
        transport = DatagramTransport(base, a, proto, remote_addr=a.getpeername())
        run_until(base, lambda: proto.of("made"))
        transport.set_write_buffer_limits(high=4096)
        assert transport.get_write_buffer_limits() == (1024, 4096)
        n = 0
        while not proto.of("pause"):
            transport.sendto(b"%06d" % n + b"." * 994)
            n += 1
            assert n < 100000, "the kernel never pushed back"
        assert transport.get_write_buffer_size() > 4096
        got = []

        def drain(fd, what, arg):
            while True:
                try:
                    got.append(b.recv(2048))
                except BlockingIOError:
                    return

        watch = reactorsvc.Event(base, b.fileno(), reactorsvc.EV_READ | reactorsvc.EV_PERSIST, drain)
        watch.add()
        try:
            run_until(base, lambda: len(got) == n, what="every datagram")
        finally:
            watch.delete()
        assert [int(d[:6]) for d in got] == list(range(n))
        assert proto.of("resume") and transport.get_write_buffer_size() == 0
        assert transport.datagrams_out == n
        transport.close()
        run_until(base, lambda: proto.of("lost"))
    finally:
        b.close()


@pytest.mark.timeout(10)
def test_close_flushes_the_queue_abort_drops_it(base):
    for how in ("close", "abort"):
        a, b = _unix_pair()
        try:
            proto = Recorder()
            transport = DatagramTransport(base, a, proto, remote_addr=a.getpeername())
            run_until(base, lambda: proto.of("made"))
            while not transport.get_write_buffer_size():
                transport.sendto(b"z" * 1000)
            sent = transport.datagrams_out + len(transport._queue)
            getattr(transport, how)()
            assert transport.is_closing()
            transport.sendto(b"ignored")
            got = []
            while not proto.of("lost"):
                try:
                    got.append(b.recv(2048))
                except BlockingIOError:
                    run_until(base, lambda: True)
                base.loop(reactorsvc.EVLOOP_NONBLOCK)
            while True:
                try:
                    got.append(b.recv(2048))
                except BlockingIOError:
                    break
            assert proto.of("lost") == [("lost", None)]
            assert len(got) == (sent if how == "close" else transport.datagrams_out)
            assert b"ignored" not in got
        finally:
            b.close()


@pytest.mark.timeout(10)
def test_truncated_datagrams_are_dropped_counted_and_reported(base):
    a, b = _unix_pair()
    try:
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        proto = Recorder()
        transport = DatagramTransport(base, a, proto, remote_addr=a.getpeername())
        b.setblocking(True)
        b.send(b"L" * (100 * 1024))  # larger than the 64 KiB receive area
        b.send(b"small")
        run_until(base, lambda: proto.of("data"))
        assert [e[1] for e in proto.of("data")] == [b"small"]
        [(_, exc)] = proto.of("error")
        assert exc.errno == errno.EMSGSIZE and transport.truncated == 1
        transport.abort()
        run_until(base, lambda: proto.of("lost"))
    finally:
        b.close()


@pytest.mark.timeout(10)
def test_a_raising_callback_ends_the_endpoint_with_its_error(base, udp_client):
    class Boom(Recorder):
        def datagram_received(self, data, addr):
            raise RuntimeError("boom")

    proto = Boom()
    transport = open_datagram_endpoint(base, lambda: proto, local_addr=("127.0.0.1", 0))
    udp_client().sendto(b"x", transport.get_extra_info("sockname"))
    run_until(base, lambda: proto.of("lost"))
    [(_, exc)] = proto.of("lost")
    assert isinstance(exc, RuntimeError) and transport.is_closing()


@pytest.mark.timeout(10)
def test_reuse_port_family_and_ipv6(base):
    first = open_datagram_endpoint(base, Recorder, local_addr=("127.0.0.1", 0), reuse_port=True)
    port = first.get_extra_info("sockname")[1]
    second = open_datagram_endpoint(base, Recorder, local_addr=("127.0.0.1", port), reuse_port=True)
    unbound = open_datagram_endpoint(base, Recorder, family=socket.AF_INET)
    assert unbound.get_extra_info("peername") is None
    assert unbound.get_extra_info("socket").family == socket.AF_INET
    endpoints = [first, second, unbound]
    if socket.has_ipv6:
        try:
            endpoints.append(open_datagram_endpoint(base, Recorder, local_addr=("::1", 0)))
        except OSError:
            pass  # no IPv6 loopback here
    with pytest.raises(OSError, match="Address already in use"):
        open_datagram_endpoint(base, Recorder, local_addr=("127.0.0.1", port))
    for t in endpoints:
        t.close()
    run_until(base, lambda: all(t._lost for t in endpoints))
    base.loop(reactorsvc.EVLOOP_NONBLOCK)


def test_argument_checks(base):
    with pytest.raises(TypeError, match="local_addr must be a \\(host, port\\) tuple"):
        open_datagram_endpoint(base, Recorder, local_addr="127.0.0.1:53")
    with pytest.raises(ValueError, match="remote_addr: port 70000 out of range"):
        open_datagram_endpoint(base, Recorder, remote_addr=("127.0.0.1", 70000))
    with pytest.raises(ValueError, match="give local_addr, remote_addr or family"):
        open_datagram_endpoint(base, Recorder)
    with pytest.raises(ValueError, match="family must be"):
        open_datagram_endpoint(base, Recorder, family=socket.AF_UNIX)
    with pytest.raises(TypeError, match="reuse_port must be a bool"):
        open_datagram_endpoint(base, Recorder, family=socket.AF_INET, reuse_port=1)
    with pytest.raises(TypeError, match="protocol_factory must be callable"):
        open_datagram_endpoint(base, None, family=socket.AF_INET)
    with pytest.raises(TypeError, match="has no callable datagram_received"):
        open_datagram_endpoint(base, asyncio.Protocol, family=socket.AF_INET)
    t = open_datagram_endpoint(base, Recorder, family=socket.AF_INET)
    with pytest.raises(TypeError, match="data must be a bytes-like object"):
        t.sendto("text", ("127.0.0.1", 9))
    with pytest.raises(ValueError, match="addr is required"):
        t.sendto(b"x")
    t.abort()
    run_until(base, lambda: t._read_ev is None)
