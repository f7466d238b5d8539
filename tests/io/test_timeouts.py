"""Read, write and idle timeouts: one shared timer per connection, connection_lost(TimeoutError)."""

from __future__ import annotations

import socket
import time

import pytest

from reactorsvc.io import Connection

from ..helpers import on_one_backend
from .conftest import Recorder, run_for, run_until


def _lost_after(base, proto, start: float) -> float:
    run_until(base, lambda: proto.lost, what="the timeout")
    return time.monotonic() - start


def test_idle_timeout_closes_with_timeout_error(base, server_factory):
    srv = server_factory(idle_timeout=0.2)
    client = socket.create_connection(srv.address)
    client.sendall(b"x")
    run_until(base, lambda: srv.protocols and srv.protocols[0].data == b"x")
    last_activity = time.monotonic()
    proto = srv.protocols[0]
    elapsed = _lost_after(base, proto, last_activity)
    exc = proto.lost_exc()
    assert type(exc) is TimeoutError and "idle timeout" in str(exc)
    assert 0.19 <= elapsed < 1.5
    client.settimeout(5)
    assert client.recv(10) == b""
    client.close()


@on_one_backend()
def test_activity_keeps_an_idle_connection_open(base, server_factory):
    srv = server_factory(idle_timeout=0.3)
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    for _ in range(8):  # 0.48 s of traffic, never 0.3 s apart
        run_for(base, 0.06)
        client.sendall(b"k")
    run_until(base, lambda: proto.data == b"k" * 8)
    assert not proto.lost
    elapsed = _lost_after(base, proto, time.monotonic())
    assert 0.25 <= elapsed < 1.5
    client.close()


@on_one_backend()
def test_outgoing_data_also_counts_as_activity(base, server_factory):
    srv = server_factory(idle_timeout=0.3)
    client = socket.create_connection(srv.address)
    run_until(base, lambda: srv.protocols)
    proto = srv.protocols[0]
    for _ in range(8):  # only the server writes: still active
        run_for(base, 0.06)
        proto.transport.write(b"w")
    assert not proto.lost
    assert 0.25 <= _lost_after(base, proto, time.monotonic()) < 1.5
    client.close()


def test_read_timeout_counts_only_while_reading(base):
    a, b = socket.socketpair()
    proto = Recorder()
    conn = Connection.start(base, a, proto, read_timeout=0.15)
    run_until(base, lambda: proto.events)
    conn.pause_reading()
    run_for(base, 0.3)  # paused: the read timeout does not apply
    assert not proto.lost
    conn.resume_reading()  # counts from here
    elapsed = _lost_after(base, proto, time.monotonic())
    assert 0.14 <= elapsed < 1.5
    assert "read timeout" in str(proto.lost_exc())
    b.close()


def test_write_timeout_needs_stuck_output(base):
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    proto = Recorder()
    conn = Connection.start(base, a, proto, write_timeout=0.15)
    run_until(base, lambda: proto.events)
    run_for(base, 0.3)  # nothing queued: no write timeout
    assert not proto.lost
    conn.write(b"s" * (1 << 20))  # b never reads
    assert conn.get_write_buffer_size() > 0
    elapsed = _lost_after(base, proto, time.monotonic())
    assert 0.14 <= elapsed < 1.5
    assert "write timeout" in str(proto.lost_exc())
    b.close()


def test_one_timer_per_connection_whatever_the_traffic(base):
    a, b = socket.socketpair()
    proto = Recorder()
    conn = Connection.start(base, a, proto, idle_timeout=5, read_timeout=5, write_timeout=5)
    run_until(base, lambda: proto.events)
    assert base.num_events() == 2  # the read event and the shared timer
    for i in range(50):
        b.sendall(b"r")
        conn.write(b"w")
        run_until(base, lambda: len(proto.data) == i + 1)
        assert base.num_events() == 2
    conn.close()
    run_until(base, lambda: proto.lost)
    assert base.num_events() == 0
    b.close()


@pytest.mark.parametrize("name", ["idle_timeout", "read_timeout", "write_timeout"])
def test_timeout_arguments_are_checked(base, name):
    a, b = socket.socketpair()
    with pytest.raises(ValueError, match=f"{name} must be a finite number of seconds > 0"):
        Connection.start(base, a, Recorder(), **{name: -1})
    with pytest.raises(ValueError, match=name):
        Connection.start(base, a, Recorder(), **{name: float("nan")})
    with pytest.raises(TypeError, match=f"{name} must be a number of seconds or None, not bool"):
        Connection.start(base, a, Recorder(), **{name: True})
    a.close()
    b.close()
