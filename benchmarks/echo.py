#!/usr/bin/env python3
"""Echo servers under load: reactorsvc start_server (one loop), reactorsvc Server with 1, 2
and 4 worker threads, asyncio and uvloop, all serving the same asyncio.Protocol echo class
(issues 4 and 5), and epoll-floor: a bare select.epoll loop, the least Python can do.

Each server runs in its own process (benchmarks/_echo_servers.py); the C load generator
(benchmarks/loadgen/loadgen.c, built into build/loadgen) drives it and reads the server's CPU
time from /proc, so "server CPU µs per round trip" stays fair when the load generator, not
the server, is the bottleneck — on 2 cores it often is. Every server is started once, warmed
with a short run (a fresh asyncio server pays an mmap per recv(256 KiB) until its first
connection closes, cpython#85451), and then the implementations take turns, run after run,
rotating who goes first; the tables quote medians over the repeats.

Configurations (--only): ping-pong (-k 1) and pipelined (-k 16) with 64 B and 4 KiB
messages on 50 connections; 64 B ping-pong on 1,000 connections; and "churn", the accept
path: a Python client keeps 16 connections cycling through connect, one 64 B echo, close, and
the figure is server CPU µs per connection (plain accept on one loop against the
supervisor's accept + cross-thread handoff to a worker).

Columns: round trips (or connections) per second, p50/p99 latency, the server's CPU µs per
unit (median, and min–max over the repeats), that minus epoll-floor's ("over floor": the
framework's own cost, exact), its user-mode part (the tick-sampled user/system split of the
server process applied to the exact total: approximate), server and load generator CPU
utilisation, and ratios against reactorsvc start_server.

Run: python benchmarks/echo.py [--quick] [--only CONFIG ...] [--impl NAME ...] [--secs S]
     python benchmarks/echo.py --profile [KIND] [--only CONFIG]   # cProfile of one server
         (its loop thread, timed by that thread's CPU clock) under 3 s of load
Notes and a full run's tables: benchmarks/ECHO.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pstats
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from _common import arg_parser, banner, interleave_raw, positive, print_table, ratio

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOADGEN_SRC = os.path.join(HERE, "loadgen", "loadgen.c")
LOADGEN = os.path.join(REPO, "build", "loadgen")
SERVERS = os.path.join(HERE, "_echo_servers.py")
REF = "reactorsvc"
IMPLS = ("reactorsvc", "workers-1", "workers-2", "workers-4", "asyncio", "uvloop", "epoll-floor")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux >= 4.2


@dataclass(frozen=True)
class Config:
    title: str
    conns: int
    size: int = 64
    inflight: int = 1


CONFIGS = {
    "pp64": Config("64 B ping-pong, 50 connections", 50, 64, 1),
    "pp4k": Config("4 KiB ping-pong, 50 connections", 50, 4096, 1),
    "pipe64": Config("64 B pipelined (16 in flight), 50 connections", 50, 64, 16),
    "pipe4k": Config("4 KiB pipelined (16 in flight), 50 connections", 50, 4096, 16),
    "c1000": Config("64 B ping-pong, 1,000 connections", 1000, 64, 1),
    "churn": Config("churn: connect, one 64 B echo, close; 16 at a time", 16, 64, 1),
}


def have_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def proc_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of every thread of `pid`, in seconds (as the load generator reads them)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def add_user_share(result: dict, before: tuple[float, float], after: tuple[float, float]) -> dict:
    """Split the exact CPU per round trip into user and kernel by the process's user/system
    ratio over the whole run. Linux samples that ratio at the tick, so it is approximate —
    but the kernel's share (recv, send, epoll_wait) is much the same for every server, and
    the user share is what the framework itself costs."""
    du, ds = after[0] - before[0], after[1] - before[1]
    share = du / (du + ds) if du + ds > 0 else 0.0
    result["server_user_us_per_rt"] = result["server_cpu_us_per_rt"] * share
    return result


class ServerProc:
    """One echo server subprocess; stops when its stdin closes."""

    def __init__(self, kind: str, profile_to: str | None = None, cmd: list[str] | None = None) -> None:
        """cmd: another server script's command line (scaling.py's servers), printing its port."""
        if cmd is None:
            cmd = [sys.executable, SERVERS, kind] + (["--profile", profile_to] if profile_to else [])
        self.kind = kind
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(15.0)
        sel.close()
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"echo server {kind!r} did not report its port within 15 s "
                               f"(got {line!r}; its errors are above)")
        self.port = int(line)
        self.pid = self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"echo server {self.kind!r} exited with status "
                               f"{self.proc.returncode}")

    def stop(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            # A server that hangs on its way out must not hang the benchmark: the figures
            # are in by now (seen with workers-N before the notifier's lost wake-up was fixed).
            print(f"note: echo server {self.kind!r} did not stop within 5 s; killed",
                  file=sys.stderr)
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def loadgen(server: ServerProc, cfg: Config, secs: float, warm: float) -> dict:
    """One load generator run against `server`: its JSON line as a dict."""
    cmd = [LOADGEN, "-p", str(server.port), "-c", str(cfg.conns), "-s", str(cfg.size),
           "-k", str(cfg.inflight), "-t", str(secs), "-w", str(warm), "-P", str(server.pid),
           "-L", server.kind]
    before = proc_times(server.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + warm + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen against {server.kind} failed ({out.returncode}): "
                           f"{out.stderr.strip()}")
    server.check_alive()
    result = add_user_share(json.loads(out.stdout), before, proc_times(server.pid))
    time.sleep(0.2)  # let the server finish closing this run's connections before the next
    return result


class Churn:
    """The accept-path load: keep cfg.conns connections cycling through connect, one echo of
    cfg.size bytes, close; a cycle is one unit. Plain Python: the fair figure is the server's
    CPU per connection (this client is often the bottleneck)."""

    def __init__(self, server: ServerProc, cfg: Config) -> None:
        self.server, self.msg = server, b"x" * cfg.size
        self.addr = ("127.0.0.1", server.port)
        self.sel = selectors.DefaultSelector()
        self.lat: list[float] = []
        self.opened = self.done = 0
        self.measuring = False
        for _ in range(cfg.conns):
            self.open_one()

    def open_one(self) -> None:
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Each closed connection leaves a TIME_WAIT here (we close first): rotate the source
        # address over 127.0.0.0/8 so 28k ephemeral ports per address are never used up; the
        # port is picked at connect() (IP_BIND_ADDRESS_NO_PORT), against the whole 4-tuple.
        s.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        n = self.opened
        s.bind((f"127.0.{n // 250 % 200}.{2 + n % 250}", 0))
        self.opened += 1
        s.connect_ex(self.addr)  # EINPROGRESS, or done at once on loopback
        self.sel.register(s, selectors.EVENT_WRITE, [time.perf_counter(), -1])  # [t0, received]

    def on_ready(self, s: socket.socket, state: list) -> None:
        if state[1] < 0:  # connected: send the message
            s.send(self.msg)
            state[1] = 0
            self.sel.modify(s, selectors.EVENT_READ, state)
            return
        got = s.recv(65536)
        if not got:
            raise RuntimeError(f"{self.server.kind} closed a churn connection before echoing")
        state[1] += len(got)
        if state[1] >= len(self.msg):
            self.sel.unregister(s)
            s.close()
            if self.measuring:
                self.lat.append(time.perf_counter() - state[0])
                self.done += 1
            self.open_one()

    def run(self, secs: float, warm: float) -> dict:
        t_measure, t_end = time.perf_counter() + warm, float("inf")
        times0, me0, t0 = (0.0, 0.0), 0.0, 0.0
        try:
            while time.perf_counter() < t_end:
                for key, _ in self.sel.select(1.0):
                    self.on_ready(key.fileobj, key.data)
                if not self.measuring and time.perf_counter() >= t_measure:
                    self.measuring, times0, me0 = True, proc_times(self.server.pid), _my_cpu()
                    t0 = time.perf_counter()
                    t_end = t0 + secs
        finally:
            for key in list(self.sel.get_map().values()):
                key.fileobj.close()
            self.sel.close()
        elapsed, times1, me1 = time.perf_counter() - t0, proc_times(self.server.pid), _my_cpu()
        return self.result(elapsed, times0, times1, (me1 - me0) / elapsed)

    def result(self, elapsed: float, times0: tuple, times1: tuple, my_util: float) -> dict:
        if not self.lat:
            raise RuntimeError(f"churn against {self.server.kind}: no connection completed")
        cpu, lat = sum(times1) - sum(times0), sorted(self.lat)
        result = {"impl": self.server.kind, "rt_per_s": self.done / elapsed,
                  "p50_us": lat[len(lat) // 2] * 1e6, "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
                  "server_cpu_util": cpu / elapsed, "server_cpu_us_per_rt": cpu * 1e6 / self.done,
                  "client_cpu_util": my_util}
        return add_user_share(result, times0, times1)


def _my_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def churn(server: ServerProc, cfg: Config, secs: float, warm: float) -> dict:
    result = Churn(server, cfg).run(secs, warm)
    server.check_alive()
    time.sleep(0.2)  # let the server finish closing before the next run
    return result


def run_one(server: ServerProc, cfg_name: str, secs: float, warm: float) -> dict:
    cfg = CONFIGS[cfg_name]
    return (churn if cfg_name == "churn" else loadgen)(server, cfg, secs, warm)


def table(cfg_name: str, results: dict[str, list[dict]], title: str = "") -> None:
    """One table: medians over the repeats, ratios against the reference implementation."""
    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "impl"
                  and isinstance(runs[0][k], (int, float))} for name, runs in results.items()}
    ref = REF if REF in med else next(iter(med))
    unit = "conn" if cfg_name == "churn" else "rt"
    floor = med.get("epoll-floor")
    headers = ["impl", f"{unit}/s", "p50 µs", "p99 µs", f"srv CPU µs/{unit}", "min–max",
               "over floor", "user µs", "srv util", "lg util", f"{unit}/s vs ref", "CPU vs ref"]
    rows = []
    for name, m in med.items():
        cpus = [r["server_cpu_us_per_rt"] for r in results[name]]
        lg = f"{m['client_cpu_util']:.2f}" if m["client_cpu_util"] >= 0 else "-"
        over = f"{m['server_cpu_us_per_rt'] - floor['server_cpu_us_per_rt']:+.2f}" if floor else "-"
        rows.append([name, round(m["rt_per_s"]), m["p50_us"], m["p99_us"],
                     m["server_cpu_us_per_rt"], f"{min(cpus):.2f}–{max(cpus):.2f}", over,
                     m["server_user_us_per_rt"], f"{m['server_cpu_util']:.2f}", lg,
                     ratio(m["rt_per_s"], med[ref]["rt_per_s"]),
                     ratio(m["server_cpu_us_per_rt"], med[ref]["server_cpu_us_per_rt"])])
    runs = len(next(iter(results.values())))
    title = title or f"{CONFIGS[cfg_name].title} — medians of {runs} run(s)"
    print_table(f"[{cfg_name}] {title}; ref = {ref}", headers, rows)


def ensure_loadgen() -> str:
    if not os.access(LOADGEN, os.X_OK):
        os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
        built = subprocess.run(["gcc", "-O2", "-Wall", "-o", LOADGEN, LOADGEN_SRC])
        if built.returncode != 0:
            sys.exit(f"cannot build {LOADGEN} from {LOADGEN_SRC}: run `make build/loadgen`")
    return LOADGEN


def benchmark(configs: list[str], impls: list[str], secs: float, warm: float, repeats: int,
              dump: str | None) -> None:
    servers: dict[str, ServerProc] = {}
    raw: dict[str, dict[str, list[dict]]] = {}
    try:
        for kind in impls:
            servers[kind] = ServerProc(kind)
        cold = {}
        for kind, srv in servers.items():  # warm-up: first recv()s, first close (cpython#85451)
            cold[kind] = [loadgen(srv, CONFIGS["pp64"], 1.0, 0.2)]
            loadgen(srv, CONFIGS["pp4k"], 0.5, 0.1)
        table("pp64", cold, "cold start: the warm-up, a fresh server's first 1 s "
              "(before any connection has closed)")
        for name in configs:
            cases = {kind: (lambda srv=srv: run_one(srv, name, secs, warm))
                     for kind, srv in servers.items()}
            raw[name] = interleave_raw(cases, repeats, progress=name)
            table(name, raw[name])
    finally:
        for srv in servers.values():
            srv.stop()
    if dump:
        with open(dump, "w") as f:
            json.dump(raw, f, indent=1)


def profile(kind: str, cfg_name: str, secs: float, top: int) -> None:
    """cProfile the server process (main thread) under `secs` of load; print the top entries."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "server.prof")
        srv = ServerProc(kind, profile_to=out)
        try:
            loadgen(srv, CONFIGS["pp64"], 0.5, 0.1)
            r = run_one(srv, cfg_name, secs, 0.5)
        finally:
            srv.stop()
        print(f"\nprofile of {kind} under [{cfg_name}] (thread CPU time; cProfile inflates "
              f"per-call costs several times: {r['rt_per_s']:,.0f} units/s, server CPU "
              f"{r['server_cpu_us_per_rt']:.2f} µs per unit while profiled):")
        stats = pstats.Stats(out)
        stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), help="configurations to run")
    parser.add_argument("--impl", nargs="+", choices=IMPLS, help="implementations to run")
    parser.add_argument("--secs", type=float, default=None, help="measured seconds per run (3)")
    parser.add_argument("--warm", type=float, default=None,
                        help="warm-up seconds inside each run (0.5; 0.3 with --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write every run's figures to FILE")
    parser.add_argument("--profile", nargs="?", const="reactorsvc", metavar="KIND",
                        choices=("reactorsvc", "asyncio", "uvloop", "epoll-floor"),
                        help="instead: cProfile this server under the first --only config")
    parser.add_argument("--top", type=int, default=30, help="profile entries to print")
    args = parser.parse_args()
    configs = args.only or (["pp64"] if args.quick else list(CONFIGS))
    impls = [i for i in (args.impl or IMPLS) if i != "uvloop" or have_uvloop()]
    if args.impl and "uvloop" in args.impl and not have_uvloop():
        sys.exit("uvloop is not installed (pip install '.[bench]')")
    secs = args.secs if args.secs is not None else (1.0 if args.quick else 3.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    repeats = positive("--repeats", repeats)
    warm = args.warm if args.warm is not None else (0.3 if args.quick else 0.5)
    if secs <= 0 or warm < 0:
        sys.exit(f"--secs must be > 0 and --warm >= 0, got {secs} and {warm}")
    if args.top < 1:
        sys.exit(f"--top must be >= 1, got {args.top}")
    ensure_loadgen()
    banner("echo.py")
    print(f"{secs:g} s runs, {repeats} repeat(s), interleaved; other work on the machine "
          f"shares its {os.cpu_count()} CPUs (see the load averages)")
    if args.profile:
        profile(args.profile, configs[0], secs, args.top)
        return
    benchmark(configs, impls, secs, warm, repeats, args.json)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
