#!/usr/bin/env python3
"""TLS and UDP echo servers side by side: reactorsvc (start_server / Server with N workers /
open_datagram_endpoint) against asyncio and uvloop serving the same protocol classes, on the
same certificate (EC P-256, made with the openssl CLI) and the same SSLContext settings.

Each server runs in its own process (this script with --serve KIND); the client runs in this
process on uvloop (asyncio without it), so both sides have a core on a 2-core machine. The
figure that matters is the server's CPU per unit, read exactly from /proc/PID/task/*/schedstat
(every thread's run time in ns) around each run: fair even when the client is the bottleneck.
Runs are interleaved (implementations take turns, rotating who goes first); tables quote
medians over the repeats and ratios against reactorsvc.

Configurations (--only):
  tls-pp64    50 TLS connections, 64 B ping-pong           server CPU µs per round trip
  tls-bulk    50 TLS connections, 16 KiB ping-pong         server CPU µs per round trip
  udp64       64 B datagrams, 32 in flight, one client socket   CPU µs per datagram echoed
  handshakes  new TLS connection, handshake, close; 16 at a time   CPU µs per handshake and
              handshakes/s, with 1 and 2 workers (run it under the free-threaded build with
              --python to see worker scaling; under the GIL two workers cannot scale)

Run: flock /tmp/reactorsvc-bench.lock python benchmarks/tls_udp.py [--quick] [--only ...]
     [--secs S] [--repeats N] [--server-python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import importlib.util
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

if importlib.util.find_spec("reactorsvc") is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    import uvloop
except ImportError:
    uvloop = None

HERE = os.path.abspath(__file__)


# ---------------------------------------------------------------------------- servers

class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def server_context(certdir: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certdir, "server.pem"), os.path.join(certdir, "server.key"))
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def serve(kind: str, mode: str, certdir: str) -> None:
    """Serve until stdin reaches EOF; the port goes to stdout once listening."""
    import logging
    import threading

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ctx = server_context(certdir)
    if kind.startswith("reactorsvc") or kind.startswith("workers"):
        import reactorsvc
        if kind.startswith("workers"):
            server = reactorsvc.Server(EchoProtocol, workers=int(kind.split("-")[1]), ssl=ctx)
            server.start()
            print(server.addresses[0][1], flush=True)
            sys.stdin.read()
            server.stop(0)
            return
        base = reactorsvc.EventBase()
        if mode == "udp":
            t = reactorsvc.open_datagram_endpoint(base, UdpEcho, local_addr=("127.0.0.1", 0))
            port = t.get_extra_info("sockname")[1]
        else:
            port = reactorsvc.start_server(base, EchoProtocol, ssl=ctx).addresses[0][1]
        threading.Thread(target=lambda: (sys.stdin.read(), base.call_soon_threadsafe(base.loopbreak)),
                         daemon=True).start()
        print(port, flush=True)
        base.loop(reactorsvc.EVLOOP_NO_EXIT_ON_EMPTY)
        return
    loop = uvloop.new_event_loop() if kind == "uvloop" else asyncio.SelectorEventLoop()
    if mode == "udp":
        t, _ = loop.run_until_complete(loop.create_datagram_endpoint(
            UdpEcho, local_addr=("127.0.0.1", 0)))
        port = t.get_extra_info("sockname")[1]
    else:
        srv = loop.run_until_complete(loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=ctx))
        port = srv.sockets[0].getsockname()[1]
    loop.add_reader(sys.stdin.fileno(), loop.stop)
    print(port, flush=True)
    loop.run_forever()


class ServerProc:
    def __init__(self, python: str, kind: str, mode: str, certdir: str) -> None:
        self.kind = kind
        self.proc = subprocess.Popen([python, HERE, "--serve", kind, mode, certdir],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def cpu(self) -> float:
        """Seconds of CPU run by every thread of the server so far (exact)."""
        total = 0
        for path in glob.glob(f"/proc/{self.proc.pid}/task/*/schedstat"):
            try:
                with open(path) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended
        return total / 1e9

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------- clients

def client_context(certdir: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=os.path.join(certdir, "ca.pem"))
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


async def _pingpong(port: int, ctx, conns: int, size: int, secs: float) -> int:
    msg = b"x" * size
    stop = time.monotonic() + secs
    counts = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                       server_hostname="localhost")
        n = 0
        while time.monotonic() < stop:
            writer.write(msg)
            await reader.readexactly(size)
            n += 1
        counts.append(n)
        writer.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return sum(counts)


async def _handshakes(port: int, ctx, parallel: int, secs: float) -> int:
    stop = time.monotonic() + secs
    counts = []

    async def one() -> None:
        n = 0
        while time.monotonic() < stop:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                           server_hostname="localhost")
            writer.close()
            n += 1
        counts.append(n)

    await asyncio.gather(*(one() for _ in range(parallel)))
    return sum(counts)


def _udp(port: int, window: int, secs: float) -> int:
    import select
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    msg = b"d" * 64
    for _ in range(window):
        s.send(msg)
    n, stop = 0, time.monotonic() + secs
    while time.monotonic() < stop:
        if not select.select([s], [], [], 0.2)[0]:
            for _ in range(window):  # datagrams lost: refill the window
                s.send(msg)
            continue
        while True:
            try:
                s.recv(2048)
            except BlockingIOError:
                break
            n += 1
            s.send(msg)
    s.close()
    return n


def run_client(config: str, port: int, certdir: str, secs: float) -> int:
    if config == "udp64":
        return _udp(port, 32, secs)
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    ctx = client_context(certdir)
    try:
        if config == "handshakes":
            return loop.run_until_complete(_handshakes(port, ctx, 16, secs))
        size = 64 if config == "tls-pp64" else 16384
        return loop.run_until_complete(_pingpong(port, ctx, 50, size, secs))
    finally:
        loop.close()


# ---------------------------------------------------------------------------- the run

CONFIGS = {"tls-pp64": ("tls", ["reactorsvc", "asyncio", "uvloop"]),
           "tls-bulk": ("tls", ["reactorsvc", "asyncio", "uvloop"]),
           "udp64": ("udp", ["reactorsvc", "asyncio", "uvloop"]),
           "handshakes": ("tls", ["reactorsvc", "workers-1", "workers-2", "asyncio"])}


def make_certs(directory: str) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    d = directory
    openssl("req", "-x509", *key, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2",
            "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            # Python 3.13's default context verifies strictly (VERIFY_X509_STRICT): a CA needs
            # its key usage, a server certificate its extended key usage.
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with open(f"{d}/ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("req", *key, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr", "-subj", "/CN=localhost")
    openssl("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
            "-set_serial", "1", "-days", "2", "-out", f"{d}/server.pem", "-extfile", f"{d}/ext")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", nargs=3, metavar=("KIND", "MODE", "CERTDIR"), help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--secs", type=float, default=None, help="seconds per run (3; --quick: 0.5)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="0.5 s runs, 1 repeat (a smoke test)")
    ap.add_argument("--server-python", default=sys.executable,
                    help="interpreter for the servers (e.g. the free-threaded 3.13t)")
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    if args.quick:
        args.repeats = 1
    if args.secs is None:
        args.secs = 0.5 if args.quick else 3.0
    print(f"python {sys.version.split()[0]} (servers: {args.server_python}), "
          f"uvloop {'yes' if uvloop else 'no'}; load: {os.getloadavg()[0]:.2f}; "
          f"{args.secs:g} s runs x {args.repeats}, interleaved")
    server_has_uvloop = subprocess.run([args.server_python, "-c", "import uvloop"],
                                       capture_output=True).returncode == 0
    with tempfile.TemporaryDirectory() as certdir:
        make_certs(certdir)
        for config in args.only:
            mode, kinds = CONFIGS[config]
            if "uvloop" in kinds and not server_has_uvloop:
                kinds = [k for k in kinds if k != "uvloop"]
            servers = {k: ServerProc(args.server_python, k, mode, certdir) for k in kinds}
            results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
            try:
                for k, srv in servers.items():  # warm-up
                    run_client(config, srv.port, certdir, min(0.3, args.secs))
                for r in range(args.repeats):
                    order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
                    for k in order:
                        srv = servers[k]
                        c0, t0 = srv.cpu(), time.monotonic()
                        n = run_client(config, srv.port, certdir, args.secs)
                        results[k].append(((srv.cpu() - c0) / max(n, 1) * 1e6,
                                           n / (time.monotonic() - t0)))
            finally:
                for srv in servers.values():
                    srv.close()
            ref = statistics.median(c for c, _ in results[kinds[0]])
            print(f"\n{config}")
            print(f"{'server':<12} {'units/s':>10} {'server cpu µs/unit':>19} {'cpu vs ' + kinds[0]:>16}")
            for k in kinds:
                cpu = statistics.median(c for c, _ in results[k])
                rate = statistics.median(r for _, r in results[k])
                print(f"{k:<12} {rate:>10,.0f} {cpu:>19.1f} {cpu / ref:>15.2f}x")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
