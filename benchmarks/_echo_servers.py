#!/usr/bin/env python3
"""The echo servers that benchmarks/echo.py measures, one per process.

Run: python benchmarks/_echo_servers.py KIND [--profile FILE]
KIND: reactorsvc (start_server, one loop in the main thread), workers-N (Server with N worker
threads), asyncio or uvloop (loop.create_server): each serves the same plain asyncio.Protocol
echo class. epoll-floor is no framework at all — select.epoll, recv(), send() — the least a
Python echo server can cost. All listen on 127.0.0.1, an ephemeral port, printed on stdout
(one line) once the server accepts. The server stops on SIGTERM/SIGINT or when stdin reaches
EOF (so it never outlives the benchmark that started it). With --profile, the serving loop
runs under cProfile, timed by the loop thread's CPU clock (main thread only: every kind but
workers-N), and the stats are dumped to FILE when it stops.

Its own process, so that the load generator can read this process's CPU time
(/proc/PID/stat: every thread) and divide it by the round trips it counted.
"""

from __future__ import annotations

import asyncio
import cProfile
import importlib.util
import logging
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable

# Run straight from a checkout (`python benchmarks/chain.py`) as well as from the venv; an
# importable reactorsvc (installed, or another checkout on PYTHONPATH for an A/B) wins.
if importlib.util.find_spec("reactorsvc") is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KINDS = ("reactorsvc", "workers-1", "workers-2", "workers-4", "asyncio", "uvloop", "epoll-floor")
PROFILABLE = ("reactorsvc", "asyncio", "uvloop", "epoll-floor")


class EchoProtocol(asyncio.Protocol):
    """The asyncio docs' echo server protocol, unchanged, for every implementation."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def _quiet_logs() -> None:
    """Warnings and errors only, to stderr: stdout carries the port, and a per-connection
    debug line (the load generator's exit resets its connections) must not fill a pipe."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _announce(port: int) -> None:
    print(port, flush=True)


def _stop_on_stdin_eof(stop: Callable[[], None]) -> None:
    """A daemon thread blocked in read(): when the parent goes away, ask the server to stop.
    It holds no GIL while blocked, so it costs the measured loop nothing."""

    def watch() -> None:
        while os.read(0, 4096):
            pass
        stop()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def _self_sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def serve_reactorsvc(profiler: cProfile.Profile | None, protocol: Callable = EchoProtocol) -> None:
    from reactorsvc import Event, EventBase, start_server

    with EventBase() as base:
        listener = start_server(base, protocol, "127.0.0.1", 0)
        stops = [Event.signal(base, s, lambda fd, what, arg: base.loopbreak())
                 for s in (signal.SIGTERM, signal.SIGINT)]
        for ev in stops:
            ev.add()
        _stop_on_stdin_eof(_self_sigterm)
        _announce(listener.addresses[0][1])
        if profiler is not None:
            profiler.enable()
        base.loop()
        if profiler is not None:
            profiler.disable()
        for ev in stops:
            ev.delete()
        listener.close()


def serve_workers(nworkers: int, protocol: Callable = EchoProtocol, accept: str = "supervisor") -> None:
    from reactorsvc import Server

    server = Server(protocol, host="127.0.0.1", port=0, workers=nworkers, accept=accept)
    server.shutdown_grace = 0.5  # the load generator has gone; do not wait 10 s
    server.start()  # binds now: the port is known before the loop runs
    _stop_on_stdin_eof(_self_sigterm)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stopped.set())
    signal.signal(signal.SIGINT, lambda *a: stopped.set())
    _announce(server.addresses[0][1])
    while not stopped.wait(0.5):  # the main thread idles: a signal lands between waits
        pass
    server.stop(0.5)


def serve_asyncio(kind: str, profiler: cProfile.Profile | None) -> None:
    if kind == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop()
    try:
        server = loop.run_until_complete(loop.create_server(EchoProtocol, "127.0.0.1", 0))
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, loop.stop)
        _stop_on_stdin_eof(_self_sigterm)
        _announce(server.sockets[0].getsockname()[1])
        if profiler is not None:
            profiler.enable()
        loop.run_forever()
        if profiler is not None:
            profiler.disable()
        server.close()
    finally:
        loop.close()


def serve_floor(profiler: cProfile.Profile | None) -> None:
    """The bare-epoll floor: level-triggered, one recv() per wake-up, send() at once; what the
    kernel does not take waits for EPOLLOUT (only under pipelined load)."""
    lsock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    lsock.setblocking(False)
    ep = select.epoll()
    ep.register(lsock.fileno(), select.EPOLLIN)
    socks: dict[int, socket.socket] = {}
    pending: dict[int, bytes] = {}

    def stop(*args: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _stop_on_stdin_eof(_self_sigterm)
    _announce(lsock.getsockname()[1])
    if profiler is not None:
        profiler.enable()
    try:
        _floor_loop(ep, lsock, socks, pending)
    except SystemExit:
        pass
    finally:
        if profiler is not None:
            profiler.disable()
        for sock in socks.values():
            sock.close()
        ep.close()
        lsock.close()


def _floor_loop(ep: select.epoll, lsock: socket.socket, socks: dict, pending: dict) -> None:
    lfd, poll = lsock.fileno(), ep.poll
    while True:
        for fd, mask in poll():
            if fd == lfd:
                while True:
                    try:
                        sock, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    socks[sock.fileno()] = sock
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            sock = socks[fd]
            if mask & select.EPOLLOUT:
                data = pending.pop(fd)
            else:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    ep.unregister(fd)
                    pending.pop(fd, None)
                    del socks[fd]
                    sock.close()
                    continue
            try:
                n = sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                continue  # the peer is gone; its EOF or error ends it on the next read
            if n < len(data):
                pending[fd] = data[n:]
                ep.modify(fd, select.EPOLLOUT)
            elif mask & select.EPOLLOUT:
                ep.modify(fd, select.EPOLLIN)


def main(argv: list[str]) -> int:
    args = list(argv)
    profile_to = None
    if "--profile" in args:
        i = args.index("--profile")
        if i + 1 >= len(args):
            sys.exit("--profile needs a file name")
        profile_to = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1 or args[0] not in KINDS:
        sys.exit("usage: _echo_servers.py KIND [--profile FILE]; KIND is one of "
                 f"{', '.join(KINDS)}")
    kind = args[0]
    if profile_to is not None and kind not in PROFILABLE:
        sys.exit(f"--profile works for {', '.join(PROFILABLE)} (cProfile sees only the main "
                 f"thread), not {kind}")
    # 1,000 connections need more fds than a default soft limit of 1,024 leaves.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _quiet_logs()
    # The loop thread's CPU time, not wall time: on a shared machine a wall-clock profile
    # bills whatever ran while this process was descheduled to the call it was in (send()).
    profiler = cProfile.Profile(time.thread_time) if profile_to else None
    if kind == "reactorsvc":
        serve_reactorsvc(profiler)
    elif kind == "epoll-floor":
        serve_floor(profiler)
    elif kind.startswith("workers-"):
        serve_workers(int(kind.split("-")[1]))
    else:
        serve_asyncio(kind, profiler)
    if profiler is not None:
        profiler.dump_stats(profile_to)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
