"""Accept shares (io/balance.py) and Listener(share=...): processes sharing a listening socket.

The table is real shared memory (a forked child's writes are seen by its parent); the rule
"ahead = more than SLACK above the least loaded sibling that is present"; two Listeners on
one socket (two fds of one open file, two bases in two loop threads — what two processes
are to the kernel) split a burst of long-lived connections evenly; a sibling that is present
but never accepts delays a connection a bounded time only (the deferral ends after
_DEFER_MAX: the connection is accepted anyway).
"""

from __future__ import annotations

import os
import socket
import threading

import pytest

import reactorsvc
from reactorsvc.base.flags import EVLOOP_NO_EXIT_ON_EMPTY
from reactorsvc.io import Listener
from reactorsvc.io.balance import ABSENT, SLACK, AcceptTable

from ..helpers import connect, wait_for

pytestmark = pytest.mark.timeout(30)


def test_table_is_shared_with_a_forked_child():
    table = AcceptTable(4)
    pid = os.fork()
    if pid == 0:  # the child: write its cell, nothing else
        share = table.share(2)
        share.opened()
        share.opened()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert table.counts() == [ABSENT, ABSENT, 2, ABSENT]
    table.clear(2)
    assert table.counts() == [ABSENT] * 4


def test_ahead_counts_only_present_siblings():
    table = AcceptTable(3)
    a, b = table.share(0), table.share(1)
    for _ in range(SLACK + 1):
        a.opened()
    assert a.ahead() and not b.ahead()      # SLACK + 1 above b's 0
    b.opened()
    assert not a.ahead()
    b.leave()                               # b drains: a is alone again
    assert not a.ahead()
    assert table.counts() == [SLACK + 1, ABSENT, ABSENT]
    with pytest.raises(ValueError, match="cell must be in 0..2"):
        table.share(3)
    base = reactorsvc.EventBase()
    try:
        with pytest.raises(TypeError, match="share must be an AcceptShare"):
            Listener(base, ("127.0.0.1", 0), lambda s, a: None, share=object())
    finally:
        base.free()


class LoopThread:
    """A base whose loop runs in a thread of its own, with one Listener on ``sock``."""

    def __init__(self, sock: socket.socket, share) -> None:
        self.base = reactorsvc.EventBase()
        self.accepted: list[socket.socket] = []   # written by the loop thread only
        self.listener = Listener(self.base, [sock], lambda s, addr: self.accepted.append(s), share=share)
        self.thread = threading.Thread(target=self.base.loop, args=(EVLOOP_NO_EXIT_ON_EMPTY,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.base.loopbreak()
        self.thread.join(10)
        self.listener.close()   # the loop has stopped: any thread may
        for s in self.accepted:
            s.close()
        self.base.free()


@pytest.fixture
def listening():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


def test_two_listeners_split_a_burst(listening):
    table = AcceptTable(2)
    loops = [LoopThread(listening.dup(), table.share(i)) for i in range(2)]
    clients = []
    try:
        clients = [connect(listening.getsockname()) for _ in range(16)]   # all queued at once
        wait_for(lambda: sum(len(lt.accepted) for lt in loops) == 16, 10, "16 connections accepted")
        counts = sorted(len(lt.accepted) for lt in loops)
        # By construction they differ by SLACK + 1 at most (8/8 or 7/9), unless one loop stalled
        # for a whole _DEFER_MAX and the other took a batch anyway: hence the generous bound.
        assert counts[0] >= 4, counts
        assert sorted(table.counts()) == counts
    finally:
        for lt in loops:
            lt.close()
        for c in clients:
            c.close()


def test_a_sibling_that_never_accepts_delays_a_connection_a_bounded_time(listening):
    table = AcceptTable(2)
    table.share(1)                       # present, holds 0, and never accepts anything
    lt = LoopThread(listening.dup(), table.share(0))
    clients = []
    try:
        for n in range(1, SLACK + 4):    # past SLACK + 1 the listener is ahead and defers
            clients.append(connect(listening.getsockname()))
            wait_for(lambda: len(lt.accepted) == n, 10, f"connection {n} accepted")
        assert table.counts() == [SLACK + 3, 0]
    finally:
        lt.close()
        for c in clients:
            c.close()
