"""Dispatch policies: which worker gets the next accepted connection.

A policy is a callable pick(workers, peer) -> index, called only in the supervisor thread.
- round_robin: each worker in turn.
- least_connections: fewest live connections plus handoffs in flight; ties go round robin,
  so an idle pool still spreads the load.
- hash: a stable hash of the peer's host, so one client keeps landing on the same worker
  (while the pool size does not change).
"""

from __future__ import annotations

import zlib
from typing import Callable, Sequence

POLICIES = ("round_robin", "least_connections", "hash")


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def __call__(self, workers: Sequence, peer: object) -> int:
        i = self._next % len(workers)
        self._next = i + 1
        return i


class LeastConnections:
    def __init__(self) -> None:
        self._rr = RoundRobin()

    def __call__(self, workers: Sequence, peer: object) -> int:
        loads = [w.load() for w in workers]
        least = min(loads)
        n = len(workers)
        start = self._rr(workers, peer)
        for k in range(n):
            i = (start + k) % n
            if loads[i] == least:
                return i
        return start  # not reached


class PeerHash:
    def __call__(self, workers: Sequence, peer: object) -> int:
        host = peer[0] if isinstance(peer, tuple) and peer else peer
        return zlib.crc32(str(host).encode()) % len(workers)


def make_policy(name: str) -> Callable[[Sequence, object], int]:
    """The policy called `name`; ValueError naming the known ones otherwise."""
    if name == "round_robin":
        return RoundRobin()
    if name == "least_connections":
        return LeastConnections()
    if name == "hash":
        return PeerHash()
    raise ValueError(f"dispatch: unknown policy {name!r}; known: {', '.join(POLICIES)}")
