"""A CPU-bound echo service for benchmarks/processes.py and scaling.py: each message costs a
fixed amount of pure-Python work (``iterations`` loop turns, calibrated by the benchmark to
about 150 µs), then is echoed back. Stands for an application whose own code, not the
framework, is the cost: the case where more processes, not more threads, use more cores under
the GIL, and where worker threads should scale on free-threaded CPython."""

from __future__ import annotations

import asyncio


MODULUS = 1000003


def burn(iterations: int, modulus: int = MODULUS) -> int:
    """`iterations` turns of integer arithmetic, every value this call's own but `modulus`."""
    acc = 0
    for i in range(iterations):
        acc = (acc + i * i) % modulus
    return acc


def private_modulus() -> int:
    """MODULUS as a new int object, for one caller (thread, connection) alone.

    Why (free-threaded CPython 3.13): the constants of code compiled by `compile()`, which
    is how every imported module is compiled, are ordinary objects with a reference count,
    shared by every thread (only the main script's constants are made immortal). burn() with
    a constant modulus increfs that one object on every turn, from every thread at once: on 2
    cores that contention costs 1.7x the CPU per call and the two threads scale ~1.1x
    (benchmarks/scaling.py's ceiling part shows both). That measures the interpreter's shared
    refcounts, not a server; the cpu benchmark's connections each use their own modulus."""
    return int(str(MODULUS))


class CpuEcho(asyncio.Protocol):
    """asyncio-compatible Protocol: burn, then echo what arrived. `shared=False` (the default):
    the modulus is this connection's own object (made in the thread that serves it);
    `shared=True`: the module's constant, shared by every thread (3.13t's refcount contention
    included; see private_modulus)."""

    def __init__(self, iterations: int = 3000, shared: bool = False) -> None:
        self._iterations = iterations
        self._modulus = MODULUS if shared else private_modulus()
        self._transport = None

    def connection_made(self, transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        burn(self._iterations, self._modulus)
        self._transport.write(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc) -> None:
        self._transport = None
