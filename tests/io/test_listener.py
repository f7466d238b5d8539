"""Listener and start_server: addresses, IPv6, Unix sockets, socket options, max_connections,
close(), a failing factory, a hand-off hook to another thread, 1,000 concurrent connections."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import tempfile
import threading

import pytest
from structlog.testing import capture_logs

import reactorsvc
from reactorsvc.base.flags import EVLOOP_NONBLOCK
from reactorsvc.io import Connection, Listener, connect, start_server

from .conftest import Recorder, read_until_eof_or, run_until


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def settle(base, listener) -> None:
    """Run until every connection the listener accepted has ended."""
    run_until(base, lambda: listener.counters()["open"] == 0, what="server connections to end")


def echo_roundtrip(base, address_or_sock, payload: bytes = b"ping") -> bytes:
    """Send payload from a plain client socket and read the echo while the loop runs."""
    if isinstance(address_or_sock, socket.socket):
        client = address_or_sock
    else:
        family = socket.AF_UNIX if isinstance(address_or_sock, str) else (
            socket.AF_INET6 if ":" in address_or_sock[0] else socket.AF_INET)
        client = socket.socket(family, socket.SOCK_STREAM)
        client.connect(address_or_sock)
    client.sendall(payload)
    got = bytearray()
    try:
        read_until_eof_or(base, client, got, enough=len(payload))
    finally:
        if client is not address_or_sock:
            client.close()
    return bytes(got)


def test_port_zero_gets_a_real_port_and_reuseaddr(base):
    with start_server(base, Echo) as listener:
        [(host, port)] = listener.addresses
        assert host == "127.0.0.1" and 0 < port < 65536
        [lsock] = listener._sockets
        assert lsock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert echo_roundtrip(base, (host, port)) == b"ping"
        run_until(base, lambda: listener.counters()["open"] == 0)
        assert listener.counters() == {"accepts": 1, "rejected": 0, "accept_pauses": 0,
                                       "emfile": 0, "accept_errors": 0, "open": 0}


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_listener_and_connect(base):
    with start_server(base, Echo, host="::1") as listener:
        [(host, port)] = listener.addresses
        assert host == "::1"
        assert echo_roundtrip(base, (host, port), b"over v6") == b"over v6"
        proto = Recorder()
        t = connect(base, lambda: proto, "::1", port)
        run_until(base, lambda: proto.events)
        assert t.get_extra_info("peername")[:2] == ("::1", port)
        t.close()
        run_until(base, lambda: proto.lost)
        settle(base, listener)


@pytest.fixture
def sock_path():
    """A short Unix socket path (sun_path holds ~108 bytes), removed afterwards."""
    tmpdir = tempfile.mkdtemp(prefix="rsvc")
    path = os.path.join(tmpdir, "s")
    yield path
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(tmpdir)


def test_unix_socket_listener_and_connect(base, sock_path):
    listener = start_server(base, Echo, path=sock_path)
    assert listener.addresses == [sock_path]
    assert echo_roundtrip(base, sock_path, b"local") == b"local"
    proto = Recorder()
    t = connect(base, lambda: proto, path=sock_path)
    t.write(b"queued before connect")
    run_until(base, lambda: proto.data == b"queued before connect")
    assert t.get_extra_info("peername") == sock_path
    t.close()
    run_until(base, lambda: proto.lost)
    settle(base, listener)
    listener.close()
    assert not os.path.exists(sock_path)  # the listener removes the file it made


def test_unix_socket_path_checks(base, sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()  # a socket file nobody listens on: replaced
    with start_server(base, Echo, path=sock_path) as listener:
        assert echo_roundtrip(base, sock_path) == b"ping"
        settle(base, listener)
    with open(sock_path, "w"):
        pass
    with pytest.raises(FileExistsError, match="exists and is not a socket"):
        start_server(base, Echo, path=sock_path)
    with pytest.raises(ValueError, match="path must not be empty"):
        start_server(base, Echo, path="")
    with pytest.raises(ValueError, match="a Unix socket path must be shorter than"):
        start_server(base, Echo, path="/tmp/" + "x" * 200)
    with pytest.raises(FileNotFoundError, match="cannot bind Unix socket '/nonexistent/s'"):
        start_server(base, Echo, path="/nonexistent/s")


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_lets_two_listeners_share_a_port(base):
    first = start_server(base, Echo, reuse_port=True)
    port = first.addresses[0][1]
    second = start_server(base, Echo, port=port, reuse_port=True)
    assert second.addresses == first.addresses
    assert second._sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    first.close()
    assert echo_roundtrip(base, ("127.0.0.1", port)) == b"ping"
    settle(base, second)
    second.close()


def test_bind_conflict_names_the_address(base):
    with start_server(base, Echo) as listener:
        port = listener.addresses[0][1]
        with pytest.raises(OSError, match=f"cannot bind '127.0.0.1' port {port}"):
            start_server(base, Echo, port=port)


def test_max_connections_pauses_accepting_until_one_closes(base, server_factory):
    srv = server_factory(max_connections=2)
    clients = [socket.create_connection(srv.address) for _ in range(3)]
    run_until(base, lambda: len(srv.protocols) == 2)
    for _ in range(3):
        base.loop(EVLOOP_NONBLOCK)
    assert len(srv.protocols) == 2  # the third waits in the backlog
    counters = srv.listener.counters()
    assert counters["open"] == 2 and counters["accept_pauses"] == 1
    clients[0].close()
    run_until(base, lambda: len(srv.protocols) == 3)
    assert srv.protocols[0].lost and srv.listener.counters()["accepts"] == 3
    for c in clients[1:]:
        c.close()
    run_until(base, lambda: all(p.lost for p in srv.protocols))
    run_until(base, lambda: srv.listener.counters()["open"] == 0)


def test_close_stops_accepting_but_leaves_connections_open(base, server_factory):
    srv = server_factory(make=Echo)
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    srv.listener.close()
    srv.listener.close()  # idempotent
    assert srv.listener.closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(srv.address)
    assert echo_roundtrip(base, client, b"still here") == b"still here"
    srv.protocols[0].transport.close()
    base.loop(EVLOOP_NONBLOCK)
    client.close()


def test_a_failing_factory_rejects_the_connection_and_is_logged(base):
    calls = []

    def factory():
        calls.append(1)
        raise RuntimeError("no protocol for you")

    with start_server(base, factory) as listener:
        client = socket.create_connection(listener.addresses[0])
        with capture_logs() as logs:
            run_until(base, lambda: listener.counters()["rejected"] == 1)
        assert any(e["event"] == "accept_hook_failed" for e in logs)
        client.settimeout(5)
        assert client.recv(10) == b""
        assert listener.counters()["open"] == 0
        client.close()


def test_pause_and_resume(base):
    with start_server(base, Echo) as listener:
        listener.pause()
        client = socket.create_connection(listener.addresses[0])
        for _ in range(3):
            base.loop(EVLOOP_NONBLOCK)
        assert listener.counters()["accepts"] == 0
        listener.resume()
        assert echo_roundtrip(base, client) == b"ping"
        assert listener.counters()["accepts"] == 1
        client.close()
        settle(base, listener)


def test_accept_hook_hands_sockets_to_another_threads_base(base, make_base):
    """The workers layer's shape: accept here, Connection.start on a worker's base."""
    worker_base = make_base(base.method)
    worker = {"name": "w1"}
    seen = []

    class Tagged(Echo):
        def connection_made(self, transport):
            super().connection_made(transport)
            seen.append((threading.current_thread().name, transport.get_extra_info("worker")))

    def on_accept(sock, addr):
        Connection.start(worker_base, sock, Tagged(), worker=worker,
                         on_close=lambda conn: listener.release())

    listener = Listener(base, ("127.0.0.1", 0), on_accept, max_connections=10, paused=True)
    listener.resume()
    thread = threading.Thread(target=worker_base.loop, args=(reactorsvc.EVLOOP_NO_EXIT_ON_EMPTY,),
                              name="worker-1")
    thread.start()
    try:
        assert echo_roundtrip(base, listener.addresses[0], b"via worker") == b"via worker"
        settle(base, listener)
    finally:
        worker_base.loopbreak()
        thread.join(5)
        worker_base.free()
        listener.close()
    assert seen == [("worker-1", worker)]


def test_listener_takes_an_existing_socket(base):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    with start_server(base, Echo, sock=lsock) as listener:
        assert listener.addresses == [lsock.getsockname()]
        assert echo_roundtrip(base, lsock.getsockname()) == b"ping"
        settle(base, listener)
    assert lsock.fileno() == -1


def test_bad_arguments_raise_clear_errors(base):
    hook = lambda sock, addr: None  # noqa: E731
    with pytest.raises(TypeError, match="protocol_factory must be callable"):
        start_server(base, None)
    with pytest.raises(TypeError, match="base must be an EventBase"):
        start_server("base", Echo)
    with pytest.raises(ValueError, match=r"port 70000 out of range 0\.\.65535"):
        start_server(base, Echo, port=70000)
    with pytest.raises(TypeError, match="port must be an int, not str"):
        start_server(base, Echo, port="80")
    with pytest.raises(TypeError, match="host must be a str or None, not int"):
        start_server(base, Echo, host=127)
    with pytest.raises(ValueError, match=r"backlog -1 out of range 0\.\.65535"):
        start_server(base, Echo, backlog=-1)
    with pytest.raises(TypeError, match="backlog must be an int"):
        start_server(base, Echo, backlog=1.0)
    with pytest.raises(ValueError, match="max_connections must be at least 1, got 0"):
        start_server(base, Echo, max_connections=0)
    with pytest.raises(TypeError, match="reuse_port must be a bool"):
        start_server(base, Echo, reuse_port="yes")
    with pytest.raises(ValueError, match="idle_timeout must be a finite number of seconds > 0"):
        start_server(base, Echo, idle_timeout=-1)
    with socket.socket() as unused, pytest.raises(ValueError, match="path or sock, not both"):
        start_server(base, Echo, path="/tmp/x", sock=unused)
    with pytest.raises(TypeError, match="sock must be a socket.socket, not int"):
        start_server(base, Echo, sock=3)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, not int"):
        start_server(base, Echo, path=3)
    with pytest.raises(TypeError, match="on_accept must be callable"):
        Listener(base, ("127.0.0.1", 0), None)
    with pytest.raises(TypeError, match=r"where must be a \(host, port\) tuple"):
        Listener(base, 42, hook)
    with pytest.raises(ValueError, match="accept_batch must be at least 1, got 0"):
        Listener(base, ("127.0.0.1", 0), hook, accept_batch=0)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        Listener(base, udp, hook)
    udp.close()


def _raise_nofile(need: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return None
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return soft, hard


class Pinger(asyncio.Protocol):
    """Client: sends its id on connect; done once it has the echo back."""

    def __init__(self, ident: int, done: list) -> None:
        self.msg = b"client-%d;" % ident
        self.got = b""
        self.done = done

    def connection_made(self, transport):
        transport.write(self.msg)

    def data_received(self, data):
        self.got += data
        if self.got == self.msg:
            self.done.append(self)


def test_a_thousand_concurrent_connections(base):
    if base.method == "select":
        pytest.skip("select cannot watch fds >= FD_SETSIZE (1024)")
    n = 1000
    saved = _raise_nofile(2 * n + 200)
    open_now = [0, 0]  # current, max

    class Counting(Echo):
        def connection_made(self, transport):
            super().connection_made(transport)
            open_now[0] += 1
            open_now[1] = max(open_now[1], open_now[0])

        def connection_lost(self, exc):
            open_now[0] -= 1

    try:
        listener = start_server(base, Counting)
        host, port = listener.addresses[0]
        done: list = []
        transports = []

        def connect_batch(start: int) -> None:  # 100 per pass: never more than the backlog
            for i in range(start, min(start + 100, n)):
                transports.append(connect(base, lambda i=i: Pinger(i, done), host, port))
            if start + 100 < n:
                base.call_soon(connect_batch, start + 100)

        base.call_soon(connect_batch, 0)
        run_until(base, lambda: len(done) == n, timeout=20, what="1,000 echoes")
        assert open_now[1] == n  # all were open at once: nobody closes before every echo
        assert sorted(p.msg for p in done) == sorted(b"client-%d;" % i for i in range(n))
        for t in transports:
            t.close()
        run_until(base, lambda: open_now[0] == 0, timeout=10)
        run_until(base, lambda: listener.counters()["open"] == 0)
        assert listener.counters()["accepts"] == n
        listener.close()
    finally:
        if saved is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, saved)
