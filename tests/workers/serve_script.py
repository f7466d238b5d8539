"""Run by test_stop.py in a subprocess: serve_forever() in the main thread, so SIGINT/SIGTERM
reach it. Usage: python serve_script.py GRACE

Prints "port N" once it is about to serve (the socket is bound and listening before that),
"connection_lost EXC" for each connection that ends, "hup N" for each SIGHUP (an extra_signals
handler) and "exited" after serve_forever() returns.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from reactorsvc.workers.server import Server


class Echo(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc) -> None:
        print(f"connection_lost {exc!r}", flush=True)


def on_hup(signum: int) -> None:
    print(f"hup {signum}", flush=True)


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)   # clients may connect before serve_forever() accepts
    server = Server(Echo, workers=2, sockets=[sock])
    server.shutdown_grace = float(sys.argv[1])
    print(f"port {sock.getsockname()[1]}", flush=True)
    server.serve_forever(extra_signals={signal.SIGHUP: on_hup})
    print("exited", flush=True)


if __name__ == "__main__":
    main()
