#!/usr/bin/env python3
"""Worker threads past one core (issue 14): run it under free-threaded CPython (3.13t).

1. cpu: a CPU-bound service (--work-us of pure Python per message, 150 µs by default; each
   connection's arithmetic on its own modulus object, or with --shared-modulus on the module's
   one constant, which 3.13t makes every thread's refcount contention) through
   reactorsvc Server(workers=1) and (workers=2), beside asyncio with one loop per thread (each
   its own create_server(reuse_port=True) on one port), 1 and 2 loops. 50 connections
   ping-pong 64 B messages (the C load generator). Figure: round trips/s, and the 2-vs-1 ratio
   of each implementation: near 2.0 on 2 cores when the threads really run in parallel.
2. echo: the same with no work per message, where the hand-off and the locks weigh more.
3. http: http-hello (reactorsvc's own HttpHelloProtocol, an asyncio.Protocol: the asyncio peer
   serves the very same class, without the keep-alive timers it gets from reactorsvc) under
   `wrk -t1 -c50` (Debian's wrk; skipped without it).
4. churn: connect, one 64 B echo, close, 16 at a time: Server(workers=1) (accept in the
   supervisor thread + hand-off to a worker) against start_server on one loop. Figure: server
   CPU µs per connection, and their ratio (the hand-off's overhead).
5. ceiling: the cpu part's very work, burn() back to back in 1 and then 2 bare threads of this
   process (each thread's own modulus, then the shared one): no sockets, no reactor, no load
   generator. What this machine and interpreter give two threads of pure Python: the most any
   server's 2-vs-1 ratio in the cpu part can reach.
6. posts: cross-thread posts (call_soon_threadsafe) from 2 producer threads into one loop, and
   2 loops posting to each other; every post must arrive exactly once (a lost one fails the
   run); posts/s. Run it under the GIL build too for the figures beside each other.

Every implementation runs once per round, rotating who goes first. A 2-vs-1 ratio is taken
round by round (both ran back to back) and its median reported: this VM's speed drifts by a
third between seconds, which a ratio of medians taken over different seconds does not cancel.
Run as `flock /tmp/reactorsvc-bench.lock python benchmarks/scaling.py` on a shared machine.
Run: python benchmarks/scaling.py [--quick] [--only cpu echo http churn ceiling posts] [--secs S] [--repeats R]
     [--shared-modulus]
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import threading
import time

from _common import arg_parser, banner, interleave_raw, positive, print_table, ratio
from echo import CONFIGS, Config, ServerProc, churn, ensure_loadgen, loadgen, proc_times

from reactorsvc import EVLOOP_NO_EXIT_ON_EMPTY, EventBase

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "_scaling_servers.py")
LOAD = Config("64 B ping-pong, 50 connections", 50, 64, 1)
PAIRS = (("workers-1", "workers-2"), ("workers-accept-1", "workers-accept-2"), ("asyncio-1", "asyncio-2"))
CHURN_KINDS = ("start_server", "workers-1", "workers-accept-1")  # accept: the per-worker accept mode


def calibrate(work_us: float) -> int:
    """Iterations of _cpu_service.burn() that take `work_us` of CPU on this interpreter
    (this thread's CPU clock: a loaded machine must not shrink the work)."""
    from _cpu_service import burn as spin

    n = 1000
    while _timed(spin, n) < 0.02:
        n *= 2
    best = min(_timed(spin, n) for _ in range(5))
    return max(1, round(n * work_us * 1e-6 / best))


def _timed(fn, n: int) -> float:
    t0 = time.thread_time()
    fn(n)
    return time.thread_time() - t0


def start(kind: str, work: int, service: str = "echo", shared: bool = False) -> ServerProc:
    return ServerProc(kind, cmd=[sys.executable, SERVERS, kind, "--work", str(work), "--service", service,
                                 *(["--shared-modulus"] if shared else [])])


def pair_order(r: int) -> list[str]:
    """Round r's running order: the two of a pair always back to back (so the pair's ratio sees
    the same machine), the order of pairs and within pairs rotating from round to round."""
    pairs = list(PAIRS) if r % 2 == 0 else list(PAIRS)[::-1]
    return [k for pair in pairs for k in (pair if r % 4 < 2 else pair[::-1])]


def paired(raw: dict[str, list[dict]], one: str, two: str) -> list[float]:
    """two/one round trips/s, round by round: both ran back to back in each round, so a machine
    whose speed drifts between rounds (a shared VM's does, by 30 % and more) moves both."""
    return [b["rt_per_s"] / a["rt_per_s"] for a, b in zip(raw[one], raw[two]) if a["rt_per_s"] > 0]


def bench_load(part: str, work: int, work_us: float, secs: float, warm: float, repeats: int,
               service: str = "echo", shared: bool = False) -> None:
    pairs = PAIRS
    kinds = [k for pair in PAIRS for k in pair]
    servers = {k: start(k, work, service, shared) for k in kinds}
    try:
        for srv in servers.values():  # warm-up: first reads, first close
            measure(srv, service, 0.5, 0.1)
        cases = {k: (lambda srv=srv: measure(srv, service, secs, warm)) for k, srv in servers.items()}
        raw = interleave_raw(cases, repeats, part, order=pair_order)
    finally:
        for srv in servers.values():
            srv.stop()
    med = {k: {f: statistics.median(r[f] for r in runs) for f in
               ("rt_per_s", "p50_us", "p99_us", "server_cpu_us_per_rt", "server_cpu_util",
                "client_cpu_util")}
           for k, runs in raw.items()}
    rows = []
    for one, two in pairs:
        for k in (one, two):
            m = med[k]
            rts = [r["rt_per_s"] for r in raw[k]]
            rows.append([k, round(m["rt_per_s"]), f"{min(rts):,.0f}–{max(rts):,.0f}", m["p50_us"],
                         m["p99_us"], m["server_cpu_us_per_rt"], f"{m['server_cpu_util']:.2f}",
                         f"{m['client_cpu_util']:.2f}",
                         f"{statistics.median(paired(raw, one, two)):.2f}x" if k == two else "1.00x"])
    modulus = "the module's shared constant" if shared else "its own"
    what = {"echo": f"{work} iterations (~{work_us:g} µs) of Python per message, modulus {modulus}" if work else
            "plain echo", "http": "http-hello (GET /, 14-byte body) under wrk -t1 -c50"}[service]
    title = LOAD.title if service == "echo" else "HTTP/1.1 keep-alive, 50 connections"
    print_table(f"[{part}] {title}, {what}; medians of {repeats} interleaved rounds",
                ["impl", "rt/s", "min–max", "p50 µs", "p99 µs", "srv CPU µs/rt", "srv util",
                 "client util", "2 vs 1"], rows)
    print("  2 vs 1: the median over rounds of (2 in that round) / (1 in that round), run back to back")
    for one, two in pairs:
        r = sorted(paired(raw, one, two))
        cpu = statistics.median(b["server_cpu_us_per_rt"] / a["server_cpu_us_per_rt"]
                                for a, b in zip(raw[one], raw[two]) if a["server_cpu_us_per_rt"] > 0)
        print(f"  {two} / {one}: median {statistics.median(r):.2f}x, rounds "
              f"{', '.join(f'{x:.2f}' for x in r)}; server CPU per round trip {cpu:.2f}x")
    for mine in ("workers-2", "workers-accept-2"):
        vs = sorted(paired(raw, "asyncio-2", mine))
        print(f"  {mine} / asyncio-2 (round trips/s): median {statistics.median(vs):.2f}x, "
              f"rounds {', '.join(f'{x:.2f}' for x in vs)}")


def measure(srv: ServerProc, service: str, secs: float, warm: float) -> dict:
    """One load run against `srv`: the C load generator (echo) or wrk (http). Both results
    carry the client's own CPU share, "client_cpu_util" (the load generator measures its own
    over the measured seconds; wrk's is its user + system CPU per second it was told to run):
    CPU of the 2 the server could not have."""
    if service == "echo":
        return loadgen(srv, LOAD, secs, warm)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk_run(srv, secs)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["client_cpu_util"] = ((c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
                                 / max(1, round(secs)))
    return result


def wrk_run(srv: ServerProc, secs: float) -> dict:
    """wrk -t1 -c50 against `srv` for `secs`: requests/s and the server's CPU per request."""
    before, t0 = proc_times(srv.pid), time.perf_counter()
    out = subprocess.run(["wrk", "-t1", "-c50", f"-d{max(1, round(secs))}s", "--latency",
                          f"http://127.0.0.1:{srv.port}/"], capture_output=True, text=True,
                         check=True, timeout=secs + 60).stdout
    wall, after = time.perf_counter() - t0, proc_times(srv.pid)
    srv.check_alive()
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk against {srv.kind} reported errors: {out.strip().splitlines()[-4:]}")
    n = int(re.search(r"(\d+) requests in", out).group(1))
    cpu = sum(after) - sum(before)
    return {"rt_per_s": n / wall, "p50_us": _wrk_latency(out, "50%"),
            "p99_us": _wrk_latency(out, "99%"), "server_cpu_us_per_rt": cpu / n * 1e6,
            "server_cpu_util": cpu / wall}


def _wrk_latency(out: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}\s+([\d.]+)(us|ms|s)\b", out, re.M)
    if not m:
        return 0.0
    return float(m.group(1)) * {"us": 1.0, "ms": 1e3, "s": 1e6}[m.group(2)]


def bench_churn(secs: float, warm: float, repeats: int) -> None:
    cfg = CONFIGS["churn"]
    servers = {k: start(k, 0) for k in CHURN_KINDS}
    try:
        for srv in servers.values():
            churn(srv, cfg, 0.5, 0.1)
        cases = {k: (lambda srv=srv: churn(srv, cfg, secs, warm)) for k, srv in servers.items()}
        raw = interleave_raw(cases, repeats, progress="churn")
    finally:
        for srv in servers.values():
            srv.stop()
    med = {k: {f: statistics.median(r[f] for r in runs) for f in
               ("rt_per_s", "p50_us", "server_cpu_us_per_rt", "server_user_us_per_rt")}
           for k, runs in raw.items()}
    ref = med["start_server"]
    rows = [[k, round(m["rt_per_s"]), m["p50_us"], m["server_cpu_us_per_rt"],
             m["server_user_us_per_rt"], ratio(m["server_cpu_us_per_rt"], ref["server_cpu_us_per_rt"])]
            for k, m in med.items()]
    print_table(f"[churn] {cfg.title}; medians of {repeats} interleaved runs",
                ["impl", "conn/s", "p50 µs", "srv CPU µs/conn", "user µs", "CPU vs start_server"], rows)


# -- 5. ceiling -----------------------------------------------------------------------------

def bare_threads(n: int, work: int, secs: float, shared: bool) -> float:
    """burn(work) calls per second in `n` threads at once, for `secs`; each thread's modulus
    its own object, or (shared) the module's constant."""
    from _cpu_service import MODULUS, burn as spin, private_modulus

    go, counts = threading.Barrier(n + 1), [0] * n  # counts[i]: written by thread i only
    stop_at = [0.0]  # written once by the main thread before the barrier releases the threads

    def run(i: int) -> None:
        modulus = MODULUS if shared else private_modulus()
        go.wait()
        c, deadline = 0, stop_at[0]
        while time.perf_counter() < deadline:
            spin(work, modulus)
            c += 1
        counts[i] = c

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + secs
    go.wait()
    for t in threads:
        t.join()
    return sum(counts) / secs


def bench_ceiling(work: int, work_us: float, secs: float, repeats: int) -> None:
    cases = {f"{n} thread{'s' * (n > 1)}, {kind} modulus": (lambda n=n, kind=kind: bare_threads(n, work, secs, kind == "shared"))
             for kind in ("own", "shared") for n in (1, 2)}
    names = list(cases)

    def order(r: int) -> list[str]:  # each pair back to back, rotating
        pairs = [names[0:2], names[2:4]][::1 if r % 2 == 0 else -1]
        return [k for pair in pairs for k in (pair if r % 4 < 2 else pair[::-1])]

    raw = interleave_raw(cases, repeats, "ceiling", order=order)
    rows = [[name, round(statistics.median(v)), f"{min(v):,.0f}–{max(v):,.0f}"] for name, v in raw.items()]
    print_table(f"[ceiling] burn({work}) (~{work_us:g} µs) back to back in bare threads, no I/O; "
                f"medians of {repeats} interleaved rounds", ["threads", "calls/s", "min–max"], rows)
    for one, two in (names[0:2], names[2:4]):
        r = sorted(b / a for a, b in zip(raw[one], raw[two]))
        print(f"  {two} / {one}, round by round: median {statistics.median(r):.2f}x, rounds "
              f"{', '.join(f'{x:.2f}' for x in r)}")
    print("  (the shared modulus: one object with a reference count that every turn of both threads"
          " changes; see _cpu_service.private_modulus)")


# -- 6. posts -------------------------------------------------------------------------------

class Counter:
    """Deliveries into one loop: incremented only in that loop's thread."""

    def __init__(self, expect: int) -> None:
        self.n, self.expect, self.done = 0, expect, threading.Event()
        self.t_last = 0.0

    def hit(self) -> None:
        self.n += 1
        if self.n == self.expect:
            self.t_last = time.perf_counter()
            self.done.set()


def _loop_thread(base: EventBase) -> threading.Thread:
    t = threading.Thread(target=base.loop, args=(EVLOOP_NO_EXIT_ON_EMPTY,), daemon=True)
    t.start()
    return t


def posts_into_one(k: int) -> float:
    """2 producer threads post k each into one loop: delivered/s; exact count checked."""
    base = EventBase()
    sink = Counter(2 * k)
    go = threading.Barrier(3)

    def produce() -> None:
        csts, hit = base.call_soon_threadsafe, sink.hit
        go.wait()
        for _ in range(k):
            csts(hit)

    loop = _loop_thread(base)
    producers = [threading.Thread(target=produce) for _ in range(2)]
    for p in producers:
        p.start()
    go.wait()
    t0 = time.perf_counter()
    for p in producers:
        p.join()
    ok = sink.done.wait(60)
    base.loopbreak()
    loop.join(10)
    base.free()
    if not ok or sink.n != 2 * k:
        raise RuntimeError(f"2 producers into one loop: {sink.n} of {2 * k} posts delivered")
    return 2 * k / (sink.t_last - t0)


def posts_between_two(k: int, batch: int = 100) -> float:
    """2 loops, each posting k to the other from its own callbacks (batches of `batch`)."""
    bases = [EventBase(), EventBase()]
    sinks = [Counter(k), Counter(k)]
    sent = [0, 0]  # sent[i]: written only in loop i's thread

    def pump(i: int) -> None:
        other, hit = bases[1 - i], sinks[1 - i].hit
        for _ in range(min(batch, k - sent[i])):
            other.call_soon_threadsafe(hit)
        sent[i] += batch
        if sent[i] < k:
            bases[i].call_soon(pump, i)

    loops = [_loop_thread(b) for b in bases]
    t0 = time.perf_counter()
    for i, b in enumerate(bases):
        b.call_soon_threadsafe(pump, i)
    ok = all(s.done.wait(60) for s in sinks)
    t_end = max(s.t_last for s in sinks)
    for b, t in zip(bases, loops):
        b.loopbreak()
        t.join(10)
        b.free()
    if not ok or any(s.n != k for s in sinks):
        raise RuntimeError(f"2 loops posting to each other: {[s.n for s in sinks]} of {k} each")
    return 2 * k / (t_end - t0)


def bench_posts(k: int, repeats: int) -> None:
    cases = {"2 producers -> 1 loop": lambda: posts_into_one(k),
             "2 loops <-> each other": lambda: posts_between_two(k)}
    raw = interleave_raw(cases, repeats, progress="posts")
    rows = [[name, statistics.median(r) / 1e6, f"{min(r) / 1e6:.3f}–{max(r) / 1e6:.3f}", 2 * k * repeats]
            for name, r in raw.items()]
    print_table(f"[posts] call_soon_threadsafe, {2 * k:,} posts per run, every one delivered "
                f"exactly once; medians of {repeats} interleaved runs",
                ["case", "delivered M/s", "min–max", "posts checked"], rows)


def gil_state() -> str:
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "GIL build"
    return "free-threaded build, GIL " + ("ENABLED" if sys._is_gil_enabled() else "disabled")


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=("cpu", "echo", "http", "churn", "ceiling", "posts"))
    parser.add_argument("--secs", type=float, default=None, help="measured seconds per run (3)")
    parser.add_argument("--work-us", type=float, default=150.0,
                        help="µs of Python per message in the cpu part (150)")
    parser.add_argument("--shared-modulus", action="store_true",
                        help="cpu part: every connection's work uses the module's one modulus "
                             "constant (3.13t's shared-refcount contention included) instead of its own")
    parser.add_argument("--posts", type=int, default=None, help="posts per producer (200,000)")
    args = parser.parse_args()
    parts = args.only or (["posts"] if args.quick else ["cpu", "echo", "http", "churn", "ceiling", "posts"])
    secs = args.secs if args.secs is not None else (1.0 if args.quick else 2.0)
    repeats = positive("--repeats", args.repeats if args.repeats is not None else (1 if args.quick else 7))
    k = positive("--posts", args.posts if args.posts is not None else (5000 if args.quick else 200_000))
    warm = 0.3
    banner("scaling.py")
    print(f"{gil_state()}; {secs:g} s runs, {repeats} repeat(s), interleaved")
    if any(p in parts for p in ("cpu", "echo", "churn")):
        ensure_loadgen()
    work = calibrate(args.work_us) if any(p in parts for p in ("cpu", "ceiling")) else 0
    if "cpu" in parts:
        bench_load("cpu", work, args.work_us, secs, warm, repeats, shared=args.shared_modulus)
    if "echo" in parts:
        bench_load("echo", 0, 0.0, secs, warm, repeats)
    if "http" in parts:
        if shutil.which("wrk"):
            bench_load("http", 0, 0.0, secs, warm, repeats, service="http")
        else:
            print("\n[http] skipped: wrk is not installed (Debian: apt-get install wrk)")
    if "churn" in parts:
        bench_churn(secs, warm, repeats)
    if "ceiling" in parts:
        bench_ceiling(work, args.work_us, secs, repeats)
    if "posts" in parts:
        bench_posts(k, repeats)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
