"""Backend-level behaviour seen through the public EventBase: many fds, dup'ed fds (epoll's
EEXIST quirk), closed fds (EBADF), select's FD_SETSIZE, reinit (regress.c's test_many_events,
test_dup_fd, test_simpleclose_rw, in spirit)."""

from __future__ import annotations

import os
import resource
import socket

import pytest

import reactorsvc
from reactorsvc import (EV_PERSIST, EV_READ, EV_WRITE, EVLOOP_NONBLOCK, EVLOOP_ONCE, Event,
                        ReactorError)

MANY = 70


def _udp_sockets(n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        socks.append(s)
    return socks


def test_many_writable_sockets_each_fire_once(backend):
    socks = _udp_sockets(MANY)
    called = [0] * MANY
    try:
        for i, s in enumerate(socks):
            Event(backend, s.fileno(), EV_WRITE,
                  lambda fd, what, i: called.__setitem__(i, called[i] + 1), i).add()
        assert backend.num_events() == MANY
        backend.loop(EVLOOP_NONBLOCK)
        assert called == [1] * MANY
        assert backend.num_events() == 0
    finally:
        for s in socks:
            s.close()


def test_many_persistent_events_added_one_at_a_time(backend):
    socks = _udp_sockets(MANY)
    called = [0] * MANY
    events = []
    try:
        for i, s in enumerate(socks):
            ev = Event(backend, s.fileno(), EV_WRITE | EV_PERSIST,
                       lambda fd, what, i: called.__setitem__(i, called[i] + 1), i)
            ev.add()
            events.append(ev)
            assert backend.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE) == 0
        assert backend.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE) == 0
        # Event i was ready in passes i .. MANY-1 and in the final one.
        assert called == [MANY - i + 1 for i in range(MANY)]
    finally:
        for ev in events:
            ev.free()
        for s in socks:
            s.close()


def test_dup_fd_closed_deleted_and_redup2ed(pair, backend):
    """epoll keys registrations by (fd, open file): re-adding a dup2'ed number gives EEXIST."""
    a, b = pair
    a.send(b"Hello world")
    fd = b.fileno()
    dfd = os.dup(fd)
    got = {}

    def record(fd_, what, name):
        got[name] = what

    ev1 = Event(backend, fd, EV_READ | EV_PERSIST, record, "ev1")
    ev2 = Event(backend, dfd, EV_READ | EV_PERSIST, record, "ev2")
    try:
        ev1.add()
        ev2.add()
        backend.loop(EVLOOP_ONCE)
        assert got == {"ev1": EV_READ, "ev2": EV_READ}

        os.close(dfd)
        ev2.delete()  # the number is closed: the backend must swallow EBADF
        got.clear()
        backend.loop(EVLOOP_ONCE)
        assert got == {"ev1": EV_READ}

        assert os.dup2(fd, dfd) == dfd
        ev2.free()
        ev2 = Event(backend, dfd, EV_WRITE | EV_PERSIST, record, "ev2")
        ev2.add()
        got.clear()
        backend.loop(EVLOOP_ONCE)
        assert got == {"ev1": EV_READ, "ev2": EV_WRITE}
    finally:
        ev1.free()
        ev2.free()
        os.close(dfd)


def test_delete_after_fd_was_closed_is_clean(backend):
    a, b = socket.socketpair()
    fired = []
    ev = Event(backend, b.fileno(), EV_READ | EV_PERSIST, lambda *x: fired.append(x))
    ev.add()
    assert backend.num_events() == 1
    a.close()
    b.close()
    ev.delete()
    assert backend.num_events() == 0
    assert ev.pending() == 0
    assert backend.loop() == 1
    assert fired == []


def test_add_of_closed_fd_raises_oserror_and_leaves_no_state(pair, backend):
    if backend.method not in ("epoll", "kqueue"):
        pytest.skip("poll/select only learn of a closed fd when they wait")
    s = socket.socket()
    dead = s.fileno()
    s.close()
    ev = Event(backend, dead, EV_READ, lambda *x: None)
    with pytest.raises(OSError):
        ev.add()
    assert backend.num_events() == 0
    assert ev.pending() == 0
    # The same fd number, alive again, must reach the backend: no count was left behind.
    a, b = pair
    assert os.dup2(b.fileno(), dead) == dead
    fired = []
    ev2 = Event(backend, dead, EV_READ, lambda fd, what, arg: fired.append((fd, what)))
    try:
        ev2.add()
        a.send(b"x")
        backend.loop(EVLOOP_ONCE)
        assert fired == [(dead, EV_READ)]
    finally:
        ev2.free()
        ev.free()
        os.close(dead)


def test_select_refuses_fd_at_or_above_fd_setsize(pair, make_base):
    if "select" not in reactorsvc.supported_methods():
        pytest.skip("no select backend")
    big = 1100
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= big:
        pytest.skip("RLIMIT_NOFILE too low to dup2 to fd 1100")
    try:
        os.fstat(big)
        pytest.skip("fd 1100 already in use")
    except OSError:
        pass
    base = make_base("select")
    os.dup2(pair[1].fileno(), big)
    try:
        ev = Event(base, big, EV_READ, lambda *x: None)
        with pytest.raises((ValueError, OSError, ReactorError),
                           match=r"FD_SETSIZE|1024|1100") as info:
            ev.add()
        assert "select" in str(info.value) or "FD_SETSIZE" in str(info.value)
        assert base.num_events() == 0
        assert ev.pending() == 0
        ev.free()
    finally:
        os.close(big)


def test_peer_close_wakes_read_and_full_buffer_write(backend):
    """A close is seen as readable on one pair and writable on a pair with a full buffer."""
    p1 = socket.socketpair()
    p2 = socket.socketpair()
    for s in (*p1, *p2):
        s.setblocking(False)
    try:
        while True:  # fill p2[1]'s send buffer until it would block
            try:
                p2[1].send(b"c" * 4096)
            except BlockingIOError:
                break
        got = {}
        closed = []

        def close_peers(fd, what, arg):
            p1[0].close()
            p2[0].close()
            closed.append(True)

        def record(fd, what, name):
            got[name] = (what, bool(closed))
            if len(got) == 2:
                backend.loopbreak()

        Event(backend, p1[1].fileno(), EV_READ, record, "r").add()
        Event(backend, p2[1].fileno(), EV_WRITE, record, "w").add()
        Event.timer(backend, close_peers).add(0.01)
        backend.loopexit(2.0)  # a bound, in case the wake-up never comes
        assert backend.loop() == 0
        # Each fired after the close (not before), with its own bit.
        assert got == {"r": (EV_READ, True), "w": (EV_WRITE, True)}
    finally:
        for s in (*p1, *p2):
            s.close()


def test_reinit_without_fork_keeps_events_working(pair, backend):
    a, b = pair
    fired = []
    ev = Event(backend, b.fileno(), EV_READ | EV_PERSIST,
               lambda fd, what, arg: fired.append(b.recv(10)))
    ev.add()
    backend.reinit()
    assert backend.num_events() == 1
    a.send(b"one")
    backend.loop(EVLOOP_ONCE)
    assert fired == [b"one"]
    ev.free()
