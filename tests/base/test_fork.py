"""reinit() after os.fork(): the child's loop works and does not disturb the parent's
(regress.c's test_fork, in spirit). The child reports through its exit status."""

from __future__ import annotations

import os
import signal
import socket

from reactorsvc import EV_PERSIST, EV_READ, EV_SIGNAL, EVLOOP_ONCE, Event

OK = 0


def test_child_reinit_loop_works_and_parent_is_untouched(pair, backend, run_forked):
    a, b = pair
    got = []
    ev = Event(backend, b.fileno(), EV_READ | EV_PERSIST,
               lambda fd, what, arg: got.append(b.recv(100)))
    ev.add()

    def child() -> int:
        backend.reinit()
        if backend.num_events() != 1:
            return 10
        # On a shared epoll instance this would remove the parent's registration too.
        ev.delete()
        c, d = socket.socketpair()
        seen = []
        Event(backend, d.fileno(), EV_READ, lambda fd, what, arg: seen.append(d.recv(10))).add()
        c.send(b"child")
        backend.loopexit(5)
        backend.loop(EVLOOP_ONCE)
        if seen != [b"child"]:
            return 11
        fired = []
        Event.timer(backend, lambda *_: fired.append(1)).add(0.001)
        backend.loop(EVLOOP_ONCE)
        return OK if fired == [1] else 12

    assert run_forked(child) == OK
    a.send(b"parent")
    backend.loopexit(2)
    backend.loop(EVLOOP_ONCE)
    assert got == [b"parent"]
    ev.free()


def test_child_signal_events_work_after_reinit(backend, run_forked):
    calls = []
    ev = Event.signal(backend, signal.SIGUSR2, lambda fd, what, arg: calls.append(what))
    ev.add()
    try:
        def child() -> int:
            backend.reinit()
            os.kill(os.getpid(), signal.SIGUSR2)
            backend.loopexit(5)
            backend.loop(EVLOOP_ONCE)
            return OK if calls == [EV_SIGNAL] else 20

        assert run_forked(child) == OK
        # The parent's own delivery still works too.
        os.kill(os.getpid(), signal.SIGUSR2)
        backend.loopexit(2)
        backend.loop(EVLOOP_ONCE)
        assert calls == [EV_SIGNAL]
    finally:
        ev.delete()
