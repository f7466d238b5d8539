#!/usr/bin/env python3
"""The servers benchmarks/scaling.py measures, one per process (so the load generator can read
this process's CPU time from /proc).

Run: python benchmarks/_scaling_servers.py KIND [--work N] [--shared-modulus]
KIND: start_server (one reactorsvc loop in the main thread), workers-N (reactorsvc Server with N
worker threads, the supervisor handing each connection over), workers-accept-N (the same with
accept="workers": each worker accepts on its own SO_REUSEPORT socket, no hand-off), asyncio-N
(N threads, each its own asyncio loop with its own create_server(reuse_port=True) on one port:
asyncio's advice for free-threaded CPython). Every kind serves the same asyncio.Protocol: for each message it runs
`--work N` iterations of a pure-Python loop (0: plain echo; each connection its own modulus
object, or with `--shared-modulus` the module's constant: _cpu_service.private_modulus says
why that differs on 3.13t), then echoes the message; with
`--service http`, the daemon's http-hello protocol instead.
Prints the port on stdout once it accepts; stops on SIGTERM/SIGINT or stdin EOF.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import signal
import sys
import threading
from typing import Callable

from _cpu_service import CpuEcho
from _echo_servers import (_announce, _quiet_logs, _self_sigterm, _stop_on_stdin_eof, serve_reactorsvc,
                           serve_workers)

def factory(work: int, service: str = "echo", shared: bool = False) -> Callable[[], asyncio.Protocol]:
    """The protocol of every kind: `work` iterations of pure Python per message, then echo; or
    (service "http") the daemon's http-hello, an asyncio.Protocol too."""
    if service == "http":
        from reactorsvc.daemon.services.http_hello import HttpHelloProtocol
        return HttpHelloProtocol
    return functools.partial(CpuEcho, work, shared=shared)


def serve_asyncio_threads(n: int, protocol: Callable) -> None:
    """N loops, each in its own thread with its own create_server(reuse_port=True) on one port."""
    port = 0
    loops: list[asyncio.AbstractEventLoop] = []
    for _ in range(n):
        loop = asyncio.new_event_loop()
        bound: queue.Queue = queue.Queue()
        threading.Thread(target=_run_asyncio, args=(loop, protocol, port, bound), daemon=True).start()
        port = bound.get(timeout=15)  # the first loop picks the port; the others join it
        loops.append(loop)
    _wait_for_stop(port)
    for loop in loops:
        loop.call_soon_threadsafe(loop.stop)


def _run_asyncio(loop: asyncio.AbstractEventLoop, protocol: Callable, port: int,
                 bound: queue.Queue) -> None:
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(protocol, "127.0.0.1", port, reuse_port=True,
                                                        backlog=1024))
    bound.put(server.sockets[0].getsockname()[1])
    loop.run_forever()
    server.close()
    loop.close()


def _wait_for_stop(port: int) -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stopped.set())
    signal.signal(signal.SIGINT, lambda *a: stopped.set())
    _stop_on_stdin_eof(_self_sigterm)
    _announce(port)
    while not stopped.wait(0.5):
        pass


def main(argv: list[str]) -> int:
    args, work, service = list(argv), 0, "echo"
    shared = "--shared-modulus" in args
    if shared:
        args.remove("--shared-modulus")
    if "--work" in args:
        i = args.index("--work")
        work = int(args[i + 1])
        del args[i:i + 2]
    if "--service" in args:
        i = args.index("--service")
        service = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1 or service not in ("echo", "http"):
        sys.exit("usage: _scaling_servers.py start_server|workers-N|workers-accept-N|asyncio-N [--work N] "
                 "[--service echo|http] [--shared-modulus]")
    kind = args[0]
    _quiet_logs()
    protocol = factory(work, service, shared)
    if kind == "start_server":
        serve_reactorsvc(None, protocol)
    elif kind.startswith("workers-accept-"):
        serve_workers(int(kind.split("-")[2]), protocol, accept="workers")
    elif kind.startswith("workers-"):
        serve_workers(int(kind.split("-")[1]), protocol)
    elif kind.startswith("asyncio-"):
        serve_asyncio_threads(int(kind.split("-")[1]), protocol)
    else:
        sys.exit(f"unknown kind {kind!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
