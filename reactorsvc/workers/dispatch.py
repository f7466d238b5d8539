"""Dispatch policies: which worker gets the next accepted connection; accept modes.

Accept modes (``Server(accept=...)``, the daemon's ``accept`` key):
- supervisor (the default): the supervisor thread accepts and hands each connection to the
  worker the policy picks.
- workers: each worker accepts on its own SO_REUSEPORT socket and serves what it accepted
  (workers/peraccept.py); the kernel picks the worker, so no policy applies.

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

from .._checks import BadArgumentValue

POLICIES = ("round_robin", "least_connections", "hash")
ACCEPT_MODES = ("supervisor", "workers")


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


def check_accept(accept: object, dispatch: str, share: object = None) -> str:
    """``accept`` if it is an accept mode that goes with ``dispatch`` and ``share``; otherwise a
    ValueError whose ``argument`` names the offending one ("accept", "dispatch", "accept_share")."""
    if accept not in ACCEPT_MODES:
        raise BadArgumentValue("accept", f"accept: unknown mode {accept!r}; known: "
                                         f"{', '.join(ACCEPT_MODES)}")
    if accept == "workers" and dispatch != "round_robin":
        raise BadArgumentValue("dispatch", f"dispatch {dispatch!r} needs accept: supervisor (with "
                                           "accept: workers the kernel picks the worker, by a hash "
                                           "of the connection's addresses)")
    if accept == "workers" and share is not None:
        raise BadArgumentValue("accept_share", "accept_share needs accept='supervisor' (sibling "
                                               "processes share the supervisor's sockets)")
    return accept
