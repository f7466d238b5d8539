"""Server(accept="workers"): every worker accepts on its own SO_REUSEPORT socket and serves
what it accepted; the contract of the supervisor mode holds (server-wide max_connections,
drain and stop, reload as a transaction, stats) or is refused by name."""

from __future__ import annotations

import select
import socket
import threading
from typing import Any

import pytest

from reactorsvc import Server
from reactorsvc.io.options import ListenerOptions
from reactorsvc.io.quota import ConnectionQuota
from reactorsvc.io.balance import AcceptTable

from ..helpers import TIMEOUT, echo, recv_exactly, recv_until_eof, wait_for
from .conftest import Echo, Made, WhoAmI, who, worker_stats

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")


class Live:
    """A protocol factory that tracks open connections across threads, and the most at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = self.most = self.total = 0

    def __call__(self) -> Any:
        owner = self

        class Counted(Echo):
            def connection_made(self, transport: Any) -> None:
                with owner._lock:
                    owner.open += 1
                    owner.total += 1
                    owner.most = max(owner.most, owner.open)
                super().connection_made(transport)

            def connection_lost(self, exc: BaseException | None) -> None:
                with owner._lock:
                    owner.open -= 1
                super().connection_lost(exc)
        return Counted()


def _bound(port: int = 0) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def test_connections_spread_over_the_workers_with_no_hand_off(serve, clients):
    made = Made(WhoAmI)
    server = serve(made, workers=2, accept="workers")
    [address] = server.addresses
    seen = []
    for _ in range(40):
        sock = clients.connect(address)
        seen.append(who(sock))
        echo(sock, b"x")
        sock.close()
    # SO_REUSEPORT hashes each 4-tuple: not an even split, but 40 never all land on one socket.
    assert set(seen) == {0, 1}
    made.wait_lost(40)
    stats = server.stats()
    assert (stats["supervisor"]["accepts"], stats["supervisor"]["handoffs"]) == (0, 0)
    assert [w["accepts"] for w in stats["workers"]] == [seen.count(0), seen.count(1)]
    assert [w["connections_total"] for w in stats["workers"]] == [seen.count(0), seen.count(1)]
    assert [w["handoffs_in_flight"] for w in stats["workers"]] == [0, 0]
    listener = stats["listeners"]["default"]
    assert listener["accept"] == "workers"
    assert listener["accepts"] == 40 and listener["accepts_per_worker"] == [seen.count(0),
                                                                           seen.count(1)]
    assert {p.thread.name for p in made.protocols} == {"reactorsvc-worker-0",
                                                       "reactorsvc-worker-1"}


def test_the_default_mode_still_hands_off(serve, clients):
    server = serve(Echo, workers=2)
    echo(clients.connect(server.addresses[0]), b"x")
    wait_for(lambda: server.stats()["supervisor"]["handoffs"] == 1)
    assert "accept" not in server.stats()["listeners"]["default"]   # its entry is unchanged
    assert worker_stats(server, "accepts") == [0, 0]


def test_max_connections_is_server_wide_across_the_workers(serve, clients):
    live = Live()
    server = serve(live, workers=2, accept="workers", max_connections=3)
    [address] = server.addresses
    held = []
    while len(held) < 3:
        sock = clients.connect(address)
        echo(sock, b"in")
        held.append(sock)
    waiting = [clients.connect(address) for _ in range(6)]   # over the limit: in the backlogs
    for sock in waiting:
        sock.sendall(b"w")
    for sock in waiting:
        sock.settimeout(0.05)    # bounded proof of absence (0.3 s over the six)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        sock.settimeout(TIMEOUT)
    assert live.open == 3 and sum(worker_stats(server, "connections")) == 3
    for sock in held:            # each close lets one waiting client in, on either worker
        sock.close()
    pending = list(waiting)
    while pending:
        ready, _, _ = select.select(pending, [], [], TIMEOUT)
        assert ready, f"{len(pending)} waiting clients never served"
        for sock in ready:
            assert recv_exactly(sock, 1) == b"w"
            sock.close()
            pending.remove(sock)
    wait_for(lambda: live.total == 9 and live.open == 0, what="every connection closed")
    assert live.most == 3


def test_max_connections_holds_when_every_worker_accepts_at_once(serve):
    live = Live()
    server = serve(live, workers=2, accept="workers", max_connections=2)
    [address] = server.addresses
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(10):
                with socket.create_connection(address, timeout=TIMEOUT) as sock:
                    echo(sock, b"ping")
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(4 * TIMEOUT)
    assert not errors and not any(t.is_alive() for t in threads)
    wait_for(lambda: live.total == 60 and live.open == 0, what="60 connections served")
    assert live.most <= 2


def test_listener_options_reach_every_workers_connections(serve, clients):
    made = Made(WhoAmI)
    server = serve(made, workers=2, accept="workers", idle_timeout=0.2)
    [address] = server.addresses
    socks, seen = [], set()
    while seen != {0, 1}:        # a silent connection on each worker
        sock = clients.connect(address)
        seen.add(who(sock))
        socks.append(sock)
    for sock in socks:
        assert recv_until_eof(sock) == b""   # closed by the idle timeout
    made.wait_lost(len(socks))
    assert all(isinstance(exc, TimeoutError) for _, exc in made.lost)


def test_stop_closes_every_workers_listener_then_drains(serve, clients):
    drained = []

    class Polite(WhoAmI):
        def drain(self) -> None:
            drained.append(threading.current_thread().name)
            self.transport.close()

    made = Made(Polite)
    server = serve(made, workers=2, accept="workers")
    [address] = server.addresses
    socks, seen = [], set()
    while seen != {0, 1}:
        sock = clients.connect(address)
        seen.add(who(sock))
        socks.append(sock)
    stopper = threading.Thread(target=server.stop, args=(TIMEOUT,))
    stopper.start()
    for sock in socks:           # each connection's drain() closes it
        assert recv_until_eof(sock) == b""
    stopper.join(TIMEOUT)
    assert not stopper.is_alive() and server.wait_stopped(0)
    assert sorted(drained) == sorted(p.thread.name for p in made.protocols)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()


def test_stop_grace_closes_what_is_left(serve, clients):
    made = Made(Echo)
    server = serve(made, workers=2, accept="workers")
    [address] = server.addresses
    socks = [clients.connect(address) for _ in range(6)]
    for sock in socks:
        echo(sock, b"x")
    server.stop(0.05)
    made.wait_lost(6)
    assert [exc for _, exc in made.lost] == [None] * 6
    for sock in socks:
        assert recv_until_eof(sock) == b""


def test_reload_keeps_moves_and_removes_listeners(serve, clients):
    server = serve(WhoAmI, workers=2, accept="workers", max_connections=1)
    [old] = server.addresses
    first = clients.connect(old)
    who(first)
    late = clients.connect(old)          # held back: max_connections=1
    late.sendall(b"late")
    made = Made(WhoAmI)
    server.replace_listeners([
        ("kept", made, old, ListenerOptions(max_connections=2, idle_timeout=40)),
        ("new", Echo, ("127.0.0.1", 0), ListenerOptions())])
    who(late)                            # the new limit let it in
    assert recv_exactly(late, 4) == b"late"
    wait_for(lambda: made.protocols and made.protocols[0].transport is not None)
    assert made.protocols[0].transport._idle_timeout == 40.0   # the new options, for new ones
    assert server.listener_names() == ["kept", "new"]
    kept_address, new_address = server.addresses
    assert kept_address == old
    echo(clients.connect(new_address), b"new one")
    assert server.stats()["listeners"]["new"]["accept"] == "workers"
    server.replace_listeners([("new", Echo, new_address, ListenerOptions())])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(old, timeout=TIMEOUT).close()
    echo(first, b"the old listener's connection was drained, not cut")


def test_reload_that_cannot_bind_changes_nothing(serve, clients):
    server = serve(Echo, workers=2, accept="workers")
    [old] = server.addresses
    with _bound() as busy:   # no SO_REUSEPORT on it: nobody can join its port
        taken = busy.getsockname()
        with pytest.raises(OSError) as info:
            server.replace_listeners([("default", Echo, old, ListenerOptions()),
                                      ("second", Echo, ("127.0.0.1", 0), ListenerOptions()),
                                      ("third", Echo, taken, ListenerOptions())])
        assert info.value.listener == "third"
    assert server.listener_names() == ["default"] and server.addresses == [old]
    for _ in range(8):
        echo(clients.connect(old), b"still serving")


def test_a_taken_port_is_refused_at_start():
    with _bound() as busy:
        server = Server(Echo, port=busy.getsockname()[1], workers=2, accept="workers")
        with pytest.raises(OSError):
            server.start()


def test_unix_and_inherited_sockets_keep_the_supervisor(serve, clients, tmp_path):
    path = str(tmp_path / "s.sock")
    inherited = socket.socket()
    inherited.bind(("127.0.0.1", 0))
    server = serve(Echo, workers=2, accept="workers", sockets=[inherited])
    server.add_listener("unix", Echo, where=path)
    server.add_listener("tcp", Echo, where=("127.0.0.1", 0))
    stats = server.stats()["listeners"]
    assert {name: s.get("accept", "supervisor") for name, s in stats.items()} == {
        "default": "supervisor", "unix": "supervisor", "tcp": "workers"}
    echo(clients.connect(inherited.getsockname()), b"inherited")
    unix = socket.socket(socket.AF_UNIX)
    clients.socks.append(unix)
    unix.settimeout(TIMEOUT)
    unix.connect(path)
    echo(unix, b"unix")
    echo(clients.connect(server.addresses[-1]), b"tcp")
    wait_for(lambda: server.stats()["supervisor"]["handoffs"] == 2, what="two hand-offs")
    assert sum(worker_stats(server, "accepts")) == 1


def test_tls_handshakes_run_in_the_accepting_worker(serve, tls_certs):
    made = Made(Echo)
    server = serve(made, workers=2, accept="workers", ssl=tls_certs.server_context())
    address = server.addresses[0]
    for i in range(4):
        raw = socket.create_connection(address, timeout=TIMEOUT)
        with tls_certs.client_context().wrap_socket(raw, server_hostname="localhost") as c:
            c.sendall(b"hello %d" % i)
            assert c.recv(64) == b"hello %d" % i
    made.wait_lost(4)
    assert sum(worker_stats(server, "accepts")) == 4


@pytest.mark.parametrize("kwargs, argument, message", [
    ({"accept": "kernel"}, "accept", "accept: unknown mode 'kernel'; known: supervisor, workers"),
    ({"accept": "workers", "dispatch": "hash"}, "dispatch",
     "dispatch 'hash' needs accept: supervisor"),
    ({"accept": "workers", "accept_share": AcceptTable(1).share(0)}, "accept_share",
     "accept_share needs accept='supervisor'"),
])
def test_refusals_name_the_argument(kwargs, argument, message):
    with pytest.raises(ValueError, match=message) as info:
        Server(Echo, **kwargs)
    assert info.value.argument == argument


def test_quota_never_passes_its_limit_under_racing_threads():
    quota = ConnectionQuota(3)
    lock = threading.Lock()
    held = [0, 0]   # now, most

    def worker() -> None:
        for _ in range(2000):
            if quota.take(lambda: None):
                with lock:
                    held[0] += 1
                    held[1] = max(held[1], held[0])
                with lock:
                    held[0] -= 1
                quota.give()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(4 * TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert quota.open == 0 and held[0] == 0 and 1 <= held[1] <= 3


def test_quota_wakes_a_waiter_only_with_room():
    quota = ConnectionQuota(1)
    woken = []
    assert quota.take(lambda: woken.append("a"))
    assert not quota.take(lambda: woken.append("b"))
    quota.set_limit(1)
    assert woken == []
    quota.give()
    assert woken == ["b"] and quota.open == 0
    quota.set_limit(None)
    assert all(quota.take(lambda: None) for _ in range(5)) and quota.open == 5


def test_a_dead_workers_connections_give_their_slots_back(serve, clients):
    server = serve(WhoAmI, workers=2, accept="workers", max_connections=2)
    [address] = server.addresses
    doomed = None
    while doomed is None:                # one connection held by worker 0
        sock = clients.connect(address)
        if who(sock) == 0:
            doomed = sock
        else:
            sock.close()
    wait_for(lambda: server.stats()["listeners"]["default"]["open"] == 1, what="one open")

    def inject() -> None:
        raise SystemExit("injected")

    server._sup.workers[0].base.call_soon_threadsafe(inject)
    wait_for(lambda: server.stats()["supervisor"]["worker_restarts"] == 1, what="a restart")
    assert recv_until_eof(doomed) == b""
    both = [clients.connect(address) for _ in range(2)]   # the limit is whole again
    for sock in both:
        who(sock)
        echo(sock, b"in")


def test_a_dead_worker_is_replaced_with_its_own_listening_socket(serve, clients):
    made = Made(WhoAmI)
    server = serve(made, workers=2, accept="workers")
    [address] = server.addresses
    dead = server._sup.workers[0]

    def inject() -> None:
        raise SystemExit("injected")

    dead.base.call_soon_threadsafe(inject)
    wait_for(lambda: server.stats()["supervisor"]["worker_restarts"] == 1, what="a restart")
    dead.thread.join(TIMEOUT)
    seen = []
    for _ in range(40):
        sock = clients.connect(address)
        seen.append(who(sock))
        sock.close()
    assert set(seen) == {0, 1}   # the fresh worker accepts on its own new socket
    made.wait_lost(40)
    assert server.stats()["listeners"]["default"]["accepts"] == 40
