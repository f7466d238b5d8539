"""connect(): the returned transport is the one connection_made gets; refused and timed-out
connects end in connection_lost(exc) without connection_made; abort while connecting."""

from __future__ import annotations

import select
import socket
import time

import pytest

from reactorsvc.base.flags import EVLOOP_NONBLOCK
from reactorsvc.io import connect

from .conftest import Recorder, read_until_eof_or, run_until


def test_connect_returns_the_transport_connection_made_gets(base, server_factory):
    srv = server_factory()
    proto = Recorder()
    t = connect(base, lambda: proto, *srv.address)
    assert proto.events == []  # connection_made comes later, from the loop
    assert t.get_extra_info("peername") is None and not t.is_closing()
    run_until(base, lambda: proto.events)
    assert proto.transport is t
    assert t.get_extra_info("peername") == srv.address
    t.close()
    run_until(base, lambda: proto.lost and srv.protocols[0].lost)
    assert proto.names() == ["made", "lost"]


def test_writes_and_write_eof_before_connected_are_delivered(base, server_factory):
    srv = server_factory(make=lambda: Recorder(keep_open=True))
    proto = Recorder()
    t = connect(base, lambda: proto, *srv.address)
    t.write(b"early ")
    t.writelines([b"and ", bytearray(b"queued")])
    t.write_eof()
    run_until(base, lambda: srv.protocols and ("eof",) in srv.protocols[0].events)
    assert srv.protocols[0].data == b"early and queued"
    srv.protocols[0].transport.close()
    run_until(base, lambda: proto.lost)
    assert proto.names() == ["made", "eof", "lost"]


def test_connect_refused(base):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connects are refused
        proto = Recorder()
        t = connect(base, lambda: proto, "127.0.0.1", port)
        run_until(base, lambda: proto.lost)
    exc = proto.lost_exc()
    assert isinstance(exc, ConnectionRefusedError) and f"127.0.0.1 port {port}" in str(exc)
    assert proto.names() == ["lost"]  # no connection_made
    assert t.is_closing()
    t.write(b"ignored")
    base.loop(EVLOOP_NONBLOCK)
    assert proto.names() == ["lost"]


def _full_backlog_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback listener (backlog 0, never accepting) whose queue is full: further SYNs are
    dropped by the kernel, so a connect to it hangs until its timeout."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(ls.getsockname())
        fillers.append(s)
        if not select.select([], [s], [], 0.1)[1]:
            return ls, fillers  # this one hangs: the queue is full
    for s in [ls, *fillers]:
        s.close()
    pytest.skip("could not fill a loopback listen queue here")


def test_connect_timeout(base):
    ls, fillers = _full_backlog_listener()
    try:
        proto = Recorder()
        start = time.monotonic()
        connect(base, lambda: proto, *ls.getsockname(), timeout=0.3)
        run_until(base, lambda: proto.lost)
        elapsed = time.monotonic() - start
    finally:
        for s in [ls, *fillers]:
            s.close()
    exc = proto.lost_exc()
    assert type(exc) is TimeoutError and "timed out after 0.3 s" in str(exc)
    assert proto.names() == ["lost"]
    assert 0.29 <= elapsed < 2.0


@pytest.mark.parametrize("how", ["abort", "close"])
def test_abort_or_close_while_connecting(base, how):
    ls, fillers = _full_backlog_listener()
    try:
        proto = Recorder()
        t = connect(base, lambda: proto, *ls.getsockname(), timeout=5)
        t.write(b"never sent")
        getattr(t, how)()
        run_until(base, lambda: proto.lost)
        assert proto.names() == ["lost"] and proto.lost_exc() is None
        base.loop(EVLOOP_NONBLOCK)
        assert base.num_events() == 0  # the connect's event is gone, its socket closed
    finally:
        for s in [ls, *fillers]:
            s.close()


def test_connect_to_a_missing_unix_socket(base, tmp_path):
    proto = Recorder()
    connect(base, lambda: proto, path=str(tmp_path / "nobody"))
    run_until(base, lambda: proto.lost)
    assert isinstance(proto.lost_exc(), FileNotFoundError)


def test_connect_with_an_idle_timeout_and_a_worker(base, server_factory):
    srv = server_factory()
    proto = Recorder()
    worker = object()
    t = connect(base, lambda: proto, *srv.address, idle_timeout=0.1, worker=worker)
    run_until(base, lambda: proto.lost)
    assert type(proto.lost_exc()) is TimeoutError
    assert t.get_extra_info("worker") is worker
    run_until(base, lambda: srv.protocols[0].lost)


def test_connect_by_host_name(base, server_factory):
    srv = server_factory()
    proto = Recorder()
    connect(base, lambda: proto, "localhost", srv.address[1])  # /etc/hosts; may list ::1 first
    run_until(base, lambda: proto.events)
    assert proto.transport.get_extra_info("peername") == srv.address
    proto.transport.close()
    run_until(base, lambda: proto.lost and srv.protocols[0].lost)


def test_bad_arguments_raise_clear_errors(base):
    with pytest.raises(TypeError, match="base must be an EventBase"):
        connect(None, Recorder, "127.0.0.1", 1)
    with pytest.raises(TypeError, match="protocol_factory must be callable"):
        connect(base, Recorder(), "127.0.0.1", 1)
    with pytest.raises(ValueError, match="needs host and port"):
        connect(base, Recorder, "127.0.0.1")
    with pytest.raises(ValueError, match="host and port, or path, not both"):
        connect(base, Recorder, "127.0.0.1", 1, path="/tmp/x")
    with pytest.raises(TypeError, match="host must be a str, not bytes"):
        connect(base, Recorder, b"127.0.0.1", 1)
    with pytest.raises(ValueError, match="host must be a non-empty"):
        connect(base, Recorder, "", 1)
    with pytest.raises(ValueError, match=r"port -1 out of range 0\.\.65535"):
        connect(base, Recorder, "127.0.0.1", -1)
    with pytest.raises(TypeError, match="port must be an int, not float"):
        connect(base, Recorder, "127.0.0.1", 1.0)
    with pytest.raises(ValueError, match="timeout must be a finite number of seconds > 0"):
        connect(base, Recorder, "127.0.0.1", 1, timeout=0)
    with pytest.raises(ValueError, match="a Unix socket path must be shorter than"):
        connect(base, Recorder, path="/tmp/" + "y" * 200)
    with pytest.raises(TypeError, match="has no callable connection_made"):
        connect(base, object, "127.0.0.1", 1)
    assert base.num_events() == 0


def test_data_round_trip_with_a_plain_server(base):
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        proto = Recorder()
        t = connect(base, lambda: proto, *ls.getsockname())
        run_until(base, lambda: proto.events)
        peer, _ = ls.accept()
    with peer:
        t.write(b"hello server")
        peer.settimeout(5)
        assert peer.recv(100) == b"hello server"
        peer.sendall(b"hello client")
        peer.shutdown(socket.SHUT_WR)
        got = bytearray()
        run_until(base, lambda: proto.lost)
        assert proto.data == b"hello client"
        read_until_eof_or(base, peer, got)  # the client closed after our EOF
        assert got == b""
