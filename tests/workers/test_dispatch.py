"""Dispatch policies: the spread of real connections over workers, and the policies as units."""

from __future__ import annotations

import threading

import pytest

from reactorsvc.workers.dispatch import POLICIES, make_policy

from ..helpers import TIMEOUT, echo, wait_for
from .conftest import Made, WhoAmI, who, worker_stats


class Loaded:
    """A stand-in pool member: a policy only asks a worker for load()."""

    def __init__(self, n: int) -> None:
        self.n = n

    def load(self) -> int:
        return self.n


def test_round_robin_spreads_connections_exactly_evenly(serve, clients):
    server = serve(WhoAmI, workers=4, dispatch="round_robin")
    socks = [clients.connect(server.addresses[0]) for _ in range(12)]
    assert [who(s) for s in socks] == [0, 1, 2, 3] * 3
    assert worker_stats(server, "connections_total") == [3, 3, 3, 3]
    assert worker_stats(server, "connections") == [3, 3, 3, 3]


def test_least_connections_sends_new_connections_to_the_least_loaded(serve, clients):
    made = Made(WhoAmI)
    server = serve(made, workers=3, dispatch="least_connections")
    first = [clients.connect(server.addresses[0]) for _ in range(6)]
    # An idle pool breaks ties round robin: 0, 1, 2, 0, 1, 2.
    placed = [who(s) for s in first]
    assert placed == [0, 1, 2, 0, 1, 2]
    for sock, index in zip(first, placed):
        if index == 0:
            sock.close()
    made.wait_lost(2)
    wait_for(lambda: worker_stats(server, "connections") == [0, 2, 2], what="worker 0 empty")
    # Loads are [0, 2, 2]: the next two both go to worker 0, then [2, 2, 2] ties again.
    later = [clients.connect(server.addresses[0]) for _ in range(3)]
    assert [who(s) for s in later[:2]] == [0, 0]
    third = who(later[2])
    assert worker_stats(server, "connections")[third] == 3
    assert sorted(worker_stats(server, "connections")) == [2, 2, 3]
    for sock in later:
        echo(sock, b"still served")


def test_least_connections_counts_a_handoff_until_its_connection_is_live(serve, clients):
    # A worker busy taking a handoff in (here: in a slow protocol factory) still carries that
    # connection's load; it must not look idle to the supervisor meanwhile.
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def factory() -> WhoAmI:
        calls.append(1)
        if len(calls) == 2:
            entered.set()
            release.wait(TIMEOUT)   # the slow callback's own body
        return WhoAmI()

    server = serve(factory, workers=2, dispatch="least_connections")
    address = server.addresses[0]
    first = clients.connect(address)
    assert who(first) == 0
    second = clients.connect(address)           # loads [1, 0]: worker 1, which stalls
    assert entered.wait(TIMEOUT)
    third = clients.connect(address)            # loads [1, 1]: a tie, round robin's turn is 0
    wait_for(lambda: server.stats()["supervisor"]["handoffs"] == 3, what="3 handoffs")
    release.set()
    assert who(second) == 1
    assert who(third) == 0, "the stalled worker looked idle: its handoff was not counted"
    assert worker_stats(server, "connections_total") == [2, 1]


def test_hash_sends_one_peer_host_to_one_worker(serve, clients):
    server = serve(WhoAmI, workers=4, dispatch="hash")
    socks = [clients.connect(server.addresses[0]) for _ in range(8)]
    places = {who(s) for s in socks}
    expected = make_policy("hash")([Loaded(0)] * 4, ("127.0.0.1", 12345))
    assert places == {expected}
    totals = worker_stats(server, "connections_total")
    assert totals[expected] == 8 and sum(totals) == 8


def test_peer_hash_policy_keys_on_the_host_only():
    pick = make_policy("hash")
    pool = [Loaded(0)] * 4
    # Same host, any port (and IPv6's flow info / scope id): same worker, stable across instances.
    for host in ("10.0.0.1", "192.168.7.42", "::1"):
        first = pick(pool, (host, 1000))
        assert all(pick(pool, (host, port)) == first for port in (1, 2000, 65535))
        assert make_policy("hash")(pool, (host, 5)) == first
    assert pick(pool, ("::1", 80, 0, 0)) == pick(pool, ("::1", 443, 0, 3))
    # Many hosts use every worker, and every pick is in range.
    picks = [pick(pool, (f"10.0.{i // 256}.{i % 256}", 80)) for i in range(256)]
    assert set(picks) == {0, 1, 2, 3}
    counts = [picks.count(i) for i in range(4)]
    assert min(counts) >= 32, counts   # roughly even: each gets at least half its share
    # A Unix socket's peer is a path (often ""): still a valid index.
    assert 0 <= pick(pool, "") < 4


def test_round_robin_policy_cycles_through_the_pool():
    pick = make_policy("round_robin")
    pool = [Loaded(5), Loaded(0), Loaded(9)]
    assert [pick(pool, ("h", 1)) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_least_connections_policy_picks_the_minimum_and_breaks_ties_round_robin():
    pick = make_policy("least_connections")
    assert pick([Loaded(3), Loaded(1), Loaded(2)], None) == 1
    assert pick([Loaded(0), Loaded(4), Loaded(0)], None) in (0, 2)
    pool = [Loaded(1)] * 4
    assert sorted(pick(pool, None) for _ in range(4)) == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["nope", "", "Round_Robin"])
def test_make_policy_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="dispatch") as info:
        make_policy(name)
    assert all(known in str(info.value) for known in POLICIES)
