"""Where http-hello's own time goes: cProfile over HttpHelloProtocol fed wrk's request.

Run: ``python benchmarks/http_profile.py [--quick]``. The protocol is driven with a stub transport (no
sockets, no loop), so the figure is the protocol's share of a request (parse with httptools,
answer, timer bookkeeping); benchmarks/http.py measures the whole server. Not imported by tests.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from reactorsvc.daemon.services.http_hello import HttpHelloProtocol

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"  # what wrk sends


class _Timer:
    def cancel(self) -> None:
        pass


class _Transport:
    def get_extra_info(self, name, default=None):
        return (lambda delay, fn: _Timer()) if name == "call_later" else default

    def write(self, data: bytes) -> None:
        pass


def main() -> None:
    protocol = HttpHelloProtocol()
    protocol.connection_made(_Transport())
    n = 2_000 if "--quick" in sys.argv[1:] else 200_000  # --quick: a smoke run
    started = time.perf_counter()
    for _ in range(n):
        protocol.data_received(REQUEST)
    print(f"http-hello protocol alone: {(time.perf_counter() - started) / n * 1e6:.2f} us/request")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n // 4):
        protocol.data_received(REQUEST)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
