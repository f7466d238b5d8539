"""Connection (the Transport): asyncio protocols unchanged, callback order, half-close, close vs
abort, resets, protocol errors, extra info, reading pause, writelines, argument checks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import socket
import struct

import pytest
from structlog.testing import capture_logs

import reactorsvc
from reactorsvc.base.flags import EVLOOP_NONBLOCK
from reactorsvc.io import Connection, Protocol, connect, start_server

from .conftest import Recorder, read_until_eof_or, run_until, small_sndbuf


# The asyncio documentation's TCP echo server and client protocols ("TCP Echo Server" and
# "TCP Echo Client" in asyncio-protocol.rst), copied unchanged.
class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        peername = transport.get_extra_info('peername')
        print('Connection from {}'.format(peername))
        self.transport = transport

    def data_received(self, data):
        message = data.decode()
        print('Data received: {!r}'.format(message))

        print('Send: {!r}'.format(message))
        self.transport.write(data)

        print('Close the client socket')
        self.transport.close()


class EchoClientProtocol(asyncio.Protocol):
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost

    def connection_made(self, transport):
        transport.write(self.message.encode())
        print('Data sent: {!r}'.format(self.message))

    def data_received(self, data):
        print('Data received: {!r}'.format(data.decode()))

    def connection_lost(self, exc):
        print('The server closed the connection')
        self.on_con_lost.set_result(True)


def test_asyncio_docs_echo_protocols_run_unchanged(base, capsys):
    listener = start_server(base, EchoServerProtocol)
    host, port = listener.addresses[0]
    on_con_lost = concurrent.futures.Future()  # set_result() is all the protocol calls
    connect(base, lambda: EchoClientProtocol("Hello World!", on_con_lost), host, port)
    run_until(base, on_con_lost.done, what="the client's connection_lost")
    listener.close()
    base.loop(EVLOOP_NONBLOCK)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Data sent: 'Hello World!'"
    assert out[1].startswith("Connection from ('127.0.0.1', ")
    assert out[2:] == ["Data received: 'Hello World!'", "Send: 'Hello World!'",
                       "Close the client socket", "Data received: 'Hello World!'",
                       "The server closed the connection"]


def test_callbacks_in_order_and_connection_lost_once(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    client.sendall(b"ping")
    run_until(base, lambda: srv.protocols and srv.protocols[0].data == b"ping")
    proto = srv.protocols[0]
    proto.transport.write(b"pong")
    client.shutdown(socket.SHUT_WR)
    run_until(base, lambda: proto.lost)
    assert proto.names() == ["made", "data", "eof", "lost"]
    assert proto.lost_exc() is None
    assert client.recv(10) == b"pong"
    assert client.recv(10) == b""  # eof_received returned None: the server closed
    client.close()


def test_close_flushes_then_connection_lost_none(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    small_sndbuf(proto.transport)
    payload = b"x" * (3 << 20)
    proto.transport.write(payload)
    assert proto.transport.get_write_buffer_size() > 0
    proto.transport.close()
    assert proto.transport.is_closing()
    proto.transport.write(b"y")  # still accepted while the flush is pending, as in asyncio
    got = bytearray()
    read_until_eof_or(base, client, got)
    assert got == payload + b"y"
    run_until(base, lambda: proto.lost)
    assert proto.lost_exc() is None
    assert proto.transport.get_extra_info("socket").fileno() == -1
    client.close()


def test_abort_drops_queued_data(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    small_sndbuf(proto.transport)
    proto.transport.write(b"z" * (8 << 20))
    assert proto.transport.get_write_buffer_size() > 0
    proto.transport.abort()
    assert proto.transport.get_write_buffer_size() == 0
    proto.transport.abort()  # idempotent
    proto.transport.close()
    run_until(base, lambda: proto.lost)
    assert proto.names() == ["made", "pause", "lost"] and proto.lost_exc() is None
    got = bytearray()
    read_until_eof_or(base, client, got)
    assert len(got) < 8 << 20
    client.close()


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Flood(Recorder):
    """Writes 64 KiB chunks whenever it may (flow control respected)."""

    chunk = b"f" * 65536

    def connection_made(self, transport):
        super().connection_made(transport)
        self.paused = False
        self.resume_writing()

    def pause_writing(self):
        super().pause_writing()
        self.paused = True

    def resume_writing(self):
        self.paused = False
        while not self.paused and not self.transport.is_closing():
            self.transport.write(self.chunk)


def test_peer_reset_mid_write_ends_in_one_connection_lost(base, server_factory):
    srv = server_factory(make=Flood)
    client = socket.create_connection(srv.address)
    client.sendall(b"hi")
    run_until(base, lambda: srv.protocols and ("pause",) in srv.protocols[0].events)
    proto = srv.protocols[0]
    client.recv(65536)  # lets the server's flush make progress, then...
    _reset(client)      # ...the peer resets while output is still queued
    run_until(base, lambda: proto.lost)
    exc = proto.lost_exc()
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), exc
    base.loop(EVLOOP_NONBLOCK)
    assert proto.names().count("lost") == 1
    assert proto.names()[-1] == "lost"
    proto.transport.write(b"after the end")  # ignored, as in asyncio
    proto.transport.close()
    base.loop(EVLOOP_NONBLOCK)
    assert proto.names().count("lost") == 1


def test_peer_reset_while_idle_reads_econnreset(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    _reset(client)
    proto = srv.protocols[0]
    run_until(base, lambda: proto.lost)
    assert isinstance(proto.lost_exc(), ConnectionResetError)
    assert proto.names() == ["made", "lost"]


def test_direct_write_to_a_reset_peer_ends_with_the_socket_error(base, server_factory):
    # The direct path's send(): in the compiled build a C send(2), in the pure one sock.send;
    # both end the connection with the same OSError subclass and message as the socket module.
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    _reset(client)
    run_until(base, lambda: proto.lost)  # the RST: the read side sees it first...
    assert isinstance(proto.lost_exc(), ConnectionResetError)
    srv2 = server_factory()
    client2 = socket.create_connection(srv2.address)
    run_until(base, lambda: srv2.protocols)
    proto2 = srv2.protocols[0]
    proto2.transport.pause_reading()  # ...so here only the write can see it
    _reset(client2)
    for _ in range(50):  # the first send after an RST fails (EPIPE or ECONNRESET)
        proto2.transport.write(b"x" * 1024)
        if proto2.transport.is_closing():
            break
    run_until(base, lambda: proto2.lost)
    exc = proto2.lost_exc()
    assert isinstance(exc, (BrokenPipeError, ConnectionResetError)), exc
    assert str(exc) == f"[Errno {exc.errno}] {os.strerror(exc.errno)}"


def test_socket_closed_under_the_connection_reads_ebadf_not_another_fd(base, server_factory):
    # A protocol that closes the transport's socket itself: the next read must fail with EBADF
    # (the fd is looked up on the socket each time), never read whatever reuses the number.
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    proto.transport.get_extra_info("socket").close()
    other = socket.socket()  # may take the freed fd number
    try:
        client.sendall(b"hi")
        proto.transport._on_readable(-1, 0, None)  # as the loop would, had it noticed
        run_until(base, lambda: proto.lost)
        exc = proto.lost_exc()
        assert isinstance(exc, OSError) and exc.errno == errno.EBADF, exc
        assert "data" not in proto.names()
    finally:
        other.close()
        client.close()


class Faulty(Recorder):
    def data_received(self, data):
        super().data_received(data)
        raise ValueError("protocol bug")


def test_protocol_exception_is_logged_and_closes_with_it(base, server_factory):
    srv = server_factory(make=Faulty)
    client = socket.create_connection(srv.address)
    client.sendall(b"boom")
    with capture_logs() as logs:
        run_until(base, lambda: srv.protocols and srv.protocols[0].lost)
    exc = srv.protocols[0].lost_exc()
    assert type(exc) is ValueError and str(exc) == "protocol bug"
    [entry] = [e for e in logs if e["event"] == "protocol_callback_failed"]
    assert entry["log_level"] == "error" and "data_received" in entry["message"]
    client.settimeout(5)
    assert client.recv(10) == b""
    client.close()


def test_get_extra_info_and_call_later(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    t = srv.protocols[0].transport
    assert t.get_extra_info("peername") == client.getsockname()
    assert t.get_extra_info("sockname") == client.getpeername()
    assert t.get_extra_info("socket").fileno() >= 0
    assert t.get_extra_info("worker") is None
    assert t.get_extra_info("nope", "dflt") == "dflt"
    call_later = t.get_extra_info("call_later")
    fired = []
    call_later(0.01, lambda: fired.append("a"))
    cancelled = call_later(0.01, lambda: fired.append("b"))
    cancelled.cancel()
    assert cancelled.cancelled()
    run_until(base, lambda: fired)
    base.loop(EVLOOP_NONBLOCK)
    assert fired == ["a"]
    with pytest.raises(TypeError, match="fn must be callable"):
        call_later(1, None)
    with pytest.raises(ValueError, match="delay"):
        call_later(-1, lambda: None)
    pending = call_later(30, lambda: fired.append("never"))
    t.abort()
    run_until(base, lambda: srv.protocols[0].lost)
    assert pending.cancelled() and base.num_events() == 1  # only the listener remains
    client.close()


def test_call_later_callback_that_raises_closes_the_connection(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    err = KeyError("timer bug")

    def bad():
        raise err
    srv.protocols[0].transport.get_extra_info("call_later")(0, bad)
    with capture_logs():
        run_until(base, lambda: srv.protocols[0].lost)
    assert srv.protocols[0].lost_exc() is err
    client.close()


def test_pause_reading_holds_data_until_resume(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    t = proto.transport
    t.pause_reading()
    t.pause_reading()  # no-op
    assert not t.is_reading()
    client.sendall(b"held")
    import select
    assert select.select([t.get_extra_info("socket")], [], [], 5)[0]  # it is in the kernel
    for _ in range(3):
        base.loop(EVLOOP_NONBLOCK)
    assert proto.data == b""
    t.resume_reading()
    assert t.is_reading()
    run_until(base, lambda: proto.data == b"held")
    client.close()
    run_until(base, lambda: proto.lost)


def test_writelines_sends_every_item_in_order(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    t = srv.protocols[0].transport
    parts = [b"a" * 10, bytearray(b"b" * 70000), memoryview(b"c" * 5), b"", b"d" * 300000]
    t.writelines(parts)
    t.writelines(iter([b"e", b"f"]))
    t.close()
    got = bytearray()
    read_until_eof_or(base, client, got)
    assert got == b"".join(bytes(p) for p in parts) + b"ef"
    run_until(base, lambda: srv.protocols[0].lost)
    client.close()


def test_bad_arguments_raise_clear_errors(base, server_factory):
    srv = server_factory()
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    t = srv.protocols[0].transport
    with pytest.raises(TypeError, match="data must be a bytes-like object.*not str"):
        t.write("text")
    with pytest.raises(TypeError, match="not int"):
        t.write(5)
    with pytest.raises(TypeError, match=r"list_of_data\[1\] must be bytes.*not str"):
        t.writelines([b"ok", "text"])
    with pytest.raises(TypeError, match="iterable"):
        t.writelines(7)
    with pytest.raises(ValueError, match="must be >= low"):
        t.set_write_buffer_limits(high=10, low=20)
    with pytest.raises(ValueError, match="must be >= 0"):
        t.set_write_buffer_limits(high=10, low=-1)
    with pytest.raises(TypeError, match="high must be an int"):
        t.set_write_buffer_limits(high=1.5)
    t.set_write_buffer_limits(low=100)
    assert t.get_write_buffer_limits() == (100, 400)
    t.set_write_buffer_limits()
    assert t.get_write_buffer_limits() == (16384, 65536)
    with pytest.raises(TypeError, match="base must be an EventBase"):
        Connection.start(None, client, Recorder())
    with pytest.raises(TypeError, match="sock must be a socket.socket"):
        Connection.start(base, 3, Recorder())
    with pytest.raises(TypeError, match="has no callable connection_made"):
        Connection.start(base, client, object())
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        Connection.start(base, udp, Recorder())
    udp.close()
    with pytest.raises(ValueError, match="closed"):
        Connection.start(base, udp, Recorder())
    with pytest.raises(TypeError, match="idle_timeout must be a number"):
        Connection.start(base, client, Recorder(), idle_timeout="1")
    with pytest.raises(ValueError, match="read_timeout must be a finite number of seconds > 0"):
        Connection.start(base, client, Recorder(), read_timeout=0)
    with pytest.raises(TypeError, match="on_close must be callable"):
        Connection.start(base, client, Recorder(), on_close=1)
    with pytest.raises(TypeError, match="has no callable"):
        t.set_protocol(None)
    t.abort()
    run_until(base, lambda: srv.protocols[0].lost)
    client.close()


def test_start_wraps_an_existing_socket_with_a_worker(base):
    a, b = socket.socketpair()
    proto = Recorder()
    worker = object()
    closed = []
    conn = Connection.start(base, a, proto, worker=worker, on_close=closed.append)
    assert proto.events == []  # connection_made runs in the loop, not in start()
    b.sendall(b"over a socketpair")
    run_until(base, lambda: proto.data == b"over a socketpair")
    assert proto.transport is conn and conn.get_extra_info("worker") is worker
    conn.write(b"back")
    assert b.recv(10) == b"back"
    assert conn.bytes_in == 17 and conn.bytes_out == 4
    b.close()
    run_until(base, lambda: closed == [conn])
    assert proto.names() == ["made", "data", "eof", "lost"]


class PlainProtocol(Protocol):
    pass


def test_protocol_base_class_is_all_no_ops(base):
    a, b = socket.socketpair()
    conn = Connection.start(base, a, PlainProtocol())
    b.sendall(b"ignored")
    b.shutdown(socket.SHUT_WR)
    run_until(base, lambda: conn.is_closing(), what="close on EOF (eof_received -> None)")
    base.loop(EVLOOP_NONBLOCK)
    assert b.recv(10) == b""
    b.close()
    p = Protocol()
    assert p.eof_received() is None
    assert p.connection_made(None) is None and p.connection_lost(None) is None


@pytest.mark.skipif("select" not in reactorsvc.supported_methods(), reason="no select backend")
def test_a_socket_the_backend_cannot_watch_ends_in_connection_lost():
    import resource
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1500:
        pytest.skip("RLIMIT_NOFILE too low to dup a socket to fd 1500")
    cfg = reactorsvc.EventConfig()
    for other in reactorsvc.supported_methods():
        if other != "select":
            cfg.avoid_method(other)
    a, b = socket.socketpair()
    high = socket.socket(fileno=os.dup2(a.fileno(), 1500))  # past select's FD_SETSIZE
    a.close()
    proto = Recorder()
    with reactorsvc.EventBase(cfg) as select_base, capture_logs():
        Connection.start(select_base, high, proto)
        run_until(select_base, lambda: proto.lost)
    assert proto.names() == ["made", "lost"]
    assert isinstance(proto.lost_exc(), ValueError) and "FD_SETSIZE" in str(proto.lost_exc())
    assert high.fileno() == -1
    b.close()
