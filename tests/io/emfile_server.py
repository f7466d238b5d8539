"""Helper process for test_emfile.py: an echo server living under a low RLIMIT_NOFILE.

Usage: python emfile_server.py NOFILE
Prints "port N" once listening, then answers each line read on stdin:
  "stats" -> one JSON line: {"cpu": user+system CPU seconds so far,
              "counters": Listener.counters(), "overloaded": Listener.overloaded}
  "quit"  -> closes everything and exits 0.
Logs (structlog) go to stderr, so the test can count them.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys

import structlog

import reactorsvc
from reactorsvc.io import start_server


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    nofile = int(sys.argv[1])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    base = reactorsvc.EventBase()
    listener = start_server(base, Echo)
    pending = bytearray()

    def on_stdin(fd: int, what: int, arg: object) -> None:
        chunk = os.read(0, 4096)
        if not chunk:
            base.loopbreak()
            return
        pending.extend(chunk)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            if line == b"stats":
                reply = {"cpu": cpu_seconds(), "counters": listener.counters(),
                         "overloaded": listener.overloaded}
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()
            elif line == b"quit":
                base.loopbreak()

    stdin_ev = reactorsvc.Event(base, 0, reactorsvc.EV_READ | reactorsvc.EV_PERSIST, on_stdin)
    stdin_ev.add()
    print(f"port {listener.addresses[0][1]}", flush=True)
    base.loop()
    stdin_ev.delete()
    listener.close()
    base.free()
    return 0


if __name__ == "__main__":
    sys.exit(main())
