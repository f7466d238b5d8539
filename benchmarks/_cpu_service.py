"""A CPU-bound echo service for benchmarks/processes.py: each message costs a fixed amount of
pure-Python work (``iterations`` loop turns, calibrated by the benchmark to about 150 µs),
then is echoed back. Stands for an application whose own code, not the framework, is the
cost: the case where more processes, not more threads, use more cores under the GIL."""

from __future__ import annotations

import asyncio


def burn(iterations: int) -> int:
    acc = 0
    for i in range(iterations):
        acc = (acc + i * i) % 1000003
    return acc


class CpuEcho(asyncio.Protocol):
    """asyncio-compatible Protocol: burn, then echo what arrived."""

    def __init__(self, iterations: int = 3000) -> None:
        self._iterations = iterations
        self._transport = None

    def connection_made(self, transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        burn(self._iterations)
        self._transport.write(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc) -> None:
        self._transport = None
