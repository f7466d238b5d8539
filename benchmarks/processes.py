"""processes: 1 vs 2 (workers: 1 each) — what a second process buys under the GIL.

Each case runs the daemon (`reactorsvc serve`, a subprocess) in every variant at once, on
its own ports, and drives it in turn, interleaved, with the C load generator (echo-style
services: build/loadgen from benchmarks/loadgen/) or wrk
(http-hello, when installed). Variants:
- p1: processes: 1 — one process, one worker thread;
- p2: processes: 2 — a master and two children sharing one listening socket (the default);
- p2-reuseport: two independent `processes: 1` daemons binding the same port with
  SO_REUSEPORT (the kernel spreads connections by hash) — the alternative to sharing one
  socket, measured for its balance.
Cases: cpu (an echo service spending ~150 µs of Python per message, benchmarks/_cpu_service.py),
echo, http (http-hello under wrk). Figures: round trips (or requests)/s, their ratio to p1,
server CPU µs per round trip (every process of the variant, from /proc), and the share of
connections the busiest child served (0.50 is a perfect split). Medians of --repeats runs.

Run as `flock /tmp/reactorsvc-bench.lock .venv/bin/python benchmarks/processes.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from timeit import timeit

# benchmarks/http.py (a script) would shadow the stdlib's http package urllib needs.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
import urllib.request  # noqa: E402
sys.path.insert(0, _HERE)

from _common import arg_parser, banner, interleave_raw, print_table, ratio

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOADGEN = os.path.join(REPO, "build", "loadgen")
LOADGEN_SOURCE = os.path.join(HERE, "loadgen", "loadgen.c")  # `make build/loadgen`
TICK = os.sysconf("SC_CLK_TCK")
TARGET_US = 150.0
STATS_FRESH = 1.1  # seconds: the master asks its children for figures every 0.5 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def calibrate() -> int:
    """Loop turns of _cpu_service.burn costing about TARGET_US here, now."""
    sys.path.insert(0, HERE)
    from _cpu_service import burn
    n = 1000
    per_turn = min(timeit(lambda: burn(n), number=200) for _ in range(3)) / 200 / n
    return max(1, int(TARGET_US * 1e-6 / per_turn))


def cpu_of_tree(pid: int) -> float:
    """CPU seconds of `pid` and its children (the master's), from /proc."""
    total = 0.0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except OSError:
            pass
    return total


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Daemon:
    def __init__(self, case: str, processes: int, port: int, iterations: int,
                 reuse_port: bool = False, quiet: bool = True) -> None:
        self.admin = free_port()
        service = {"cpu": "_cpu_service:CpuEcho", "echo": "echo", "http": "http-hello"}[case]
        options = f"{{iterations: {iterations}}}" if case == "cpu" else "{}"
        text = (f"processes: {processes}\nworkers: 1\nlisteners:\n  - name: l\n"
                f"    bind: 127.0.0.1:{port}\n    service: {service}\n    options: {options}\n"
                f"    reuse_port: {'true' if reuse_port else 'false'}\n"
                f"admin:\n  bind: 127.0.0.1:{self.admin}\nlogging:\n  level: warning\n"
                f"shutdown:\n  grace: 1\n")
        fd, self.path = tempfile.mkstemp(suffix=".yaml")
        os.write(fd, text.encode())
        os.close(fd)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, HERE]))
        self.proc = subprocess.Popen([sys.executable, "-m", "reactorsvc", "serve", "-c", self.path,
                                      "--log-format", "json"], cwd=HERE, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL if quiet else None)
        deadline = time.monotonic() + 20
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon {case} p{processes} did not start")
            time.sleep(0.05)
        self.processes = processes

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def connections_per_child(self) -> list[float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=2) as r:
            text = r.read().decode()
        found: dict[str, float] = {}
        for m in re.finditer(r'^reactorsvc_worker_connections_total(\{[^}]*\})? (\S+)$', text, re.M):
            label = re.search(r'process="([^"]+)"', m.group(1) or "")
            key = label.group(1) if label else "0"
            found[key] = found.get(key, 0) + float(m.group(2))
        return list(found.values())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.unlink(self.path)


class Variant:
    """One way of serving a port: a list of daemons whose CPU and connections add up."""

    def __init__(self, name: str, daemons: list[Daemon], port: int) -> None:
        self.name, self.daemons, self.port = name, daemons, port
        self._conns = [0.0]

    def cpu(self) -> float:
        return sum(cpu_of_tree(d.proc.pid) for d in self.daemons)

    def conns(self) -> list[float]:
        return [c for d in self.daemons for c in d.connections_per_child()]


def run_loadgen(v: Variant, conns: int, size: int, secs: float, warm: float) -> float:
    cmd = [LOADGEN, "-p", str(v.port), "-c", str(conns), "-s", str(size), "-k", "1",
           "-t", str(secs), "-w", str(warm)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + warm + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr.strip()}")
    return json.loads(out.stdout)["rt_per_s"]


def run_wrk(v: Variant, conns: int, secs: float) -> float:
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(secs))}s",
                          f"http://127.0.0.1:{v.port}/"], capture_output=True, text=True,
                         timeout=secs + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    return float(m.group(1))


def measure(v: Variant, case: str, conns: int, secs: float, warm: float) -> dict:
    time.sleep(STATS_FRESH)  # a master's /metrics is up to 0.5 s old: let it catch up
    before_cpu, before_conns = v.cpu(), v.conns()
    t0 = time.monotonic()
    rate = run_wrk(v, conns, secs) if case == "http" else run_loadgen(
        v, conns, 64, secs, warm)
    wall = time.monotonic() - t0
    cpu = v.cpu() - before_cpu
    time.sleep(STATS_FRESH)
    after = v.conns()
    served = [a - b for a, b in zip(after, before_conns + [0.0] * (len(after) - len(before_conns)))]
    total = sum(served) or 1
    return {"rate": rate, "cpu_us": cpu / (rate * wall) * 1e6, "busiest": max(served) / total}


def start_variants(case: str, iterations: int) -> list[Variant]:
    out = []
    p = free_port()
    out.append(Variant("p1", [Daemon(case, 1, p, iterations)], p))
    p = free_port()
    out.append(Variant("p2", [Daemon(case, 2, p, iterations)], p))
    p = free_port()
    out.append(Variant("p2-reuseport", [Daemon(case, 1, p, iterations, reuse_port=True),
                                        Daemon(case, 1, p, iterations, reuse_port=True)], p))
    return out


def ensure_loadgen() -> None:
    if not os.access(LOADGEN, os.X_OK):
        os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", LOADGEN, LOADGEN_SOURCE], check=True)


def main() -> None:
    parser = arg_parser(__doc__.split("\n")[0])
    parser.add_argument("--cases", default="cpu,echo,http")
    parser.add_argument("--conns", type=int, default=16)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    secs, warm = (0.5, 0.2) if args.quick else (3.0, 0.5)
    ensure_loadgen()
    banner("processes.py")
    iterations = calibrate()
    print(f"cpu case: {iterations} loop turns per message (~{TARGET_US:.0f} µs here); "
          f"{args.conns} connections, ping-pong 64 B; {secs} s per run")
    for case in args.cases.split(","):
        if case == "http" and shutil.which("wrk") is None:
            print("\n[http] skipped: wrk is not installed")
            continue
        variants = start_variants(case, iterations)
        try:
            for v in variants:  # warm-up
                measure(v, case, args.conns, 0.5, 0.1)
            raw = interleave_raw({v.name: (lambda v=v: measure(v, case, args.conns, secs, warm))
                                  for v in variants}, repeats, progress=case)
        finally:
            for v in variants:
                for d in v.daemons:
                    d.stop()
        ref = statistics.median(r["rate"] for r in raw["p1"])
        rows = []
        for name, runs in raw.items():
            rate = statistics.median(r["rate"] for r in runs)
            rows.append([name, rate, ratio(rate, ref), statistics.median(r["cpu_us"] for r in runs),
                         f"{statistics.median(r['busiest'] for r in runs):.2f}",
                         " ".join(f"{r['rate']:,.0f}" for r in runs)])
        print_table(f"[{case}] medians of {repeats} interleaved runs; load average "
                    f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
                    ["variant", "per s", "vs p1", "server CPU µs", "busiest child", "runs"], rows)


if __name__ == "__main__":
    main()
