"""HTTP/1.1 keep-alive servers under wrk: http-hello beside uvicorn, aiohttp and nginx.

Run: ``flock /tmp/reactorsvc-bench.lock .venv/bin/python benchmarks/http.py`` (the ``bench``
extra: uvicorn, uvloop, httptools, h11, aiohttp; Debian's ``wrk`` and ``nginx-light``).
Every server answers ``GET /`` with the same 14-byte body, on 127.0.0.1 only, started and
stopped by this script. For each round, the servers take turns (rotating who goes first) under
``wrk -t1 -c50 -d{seconds}s`` and, with ``--pipeline``, under wrk with 16 requests pipelined
per round trip (http/pipeline.lua). Figures are medians over rounds: requests/s from wrk, and
the *server's* CPU per request (user + system of the server's processes, from /proc, over the
run), as ratios to uvicorn's fastest setting (``--loop uvloop --http httptools``). ``uptime``
is printed beside them: the machine is shared. Not imported by tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children, threads included."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def servers(tmp: Path) -> dict[str, tuple[list[str], int]]:
    py = sys.executable
    found: dict[str, tuple[list[str], int]] = {}
    port = free_port()
    cfg = tmp / "http-hello.yaml"
    cfg.write_text(f"workers: 1\nlisteners:\n  - name: http\n    bind: 127.0.0.1:{port}\n"
                   f"    service: http-hello\n    options: {{body: \"Hello, world!\\n\"}}\n"
                   f"logging: {{level: warning}}\nadmin: {{bind: null}}\n")
    found["reactorsvc http-hello"] = ([py, "-m", "reactorsvc", "serve", "-c", str(cfg)], port)
    uv = [py, "-m", "uvicorn", "--app-dir", str(HERE / "http"), "apps:asgi", "--host",
          "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    port = free_port()
    found["uvicorn uvloop+httptools"] = (uv + ["--port", str(port), "--loop", "uvloop",
                                               "--http", "httptools"], port)
    port = free_port()
    found["uvicorn asyncio+h11"] = (uv + ["--port", str(port), "--loop", "asyncio",
                                          "--http", "h11"], port)
    port = free_port()
    found["aiohttp"] = ([py, str(HERE / "http" / "apps.py"), "aiohttp", str(port)], port)
    if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text((HERE / "http" / "nginx.conf").read_text().format(prefix=tmp, port=port))
        found["nginx"] = ([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(tmp), "-c",
                           str(conf)], port)
    return found


def wrk(port: int, seconds: int, pipeline: bool) -> float:
    cmd = ["wrk", "-t1", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{port}/"]
    if pipeline:
        cmd[1:1] = ["-s", str(HERE / "http" / "pipeline.lua")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    if "Non-2xx" in out or "Socket errors" in out:
        print("  wrk reported errors:", out.strip().splitlines()[-3:], file=sys.stderr)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--pipeline", action="store_true", help="also the 16-deep pipelined run")
    ap.add_argument("--quick", action="store_true", help="one 1-second round: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 1
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmpdir:
        table = servers(Path(tmpdir))
        procs = {}
        try:
            for name, (cmd, port) in table.items():
                procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, cwd=tmpdir)
                wait_listening(port, procs[name])
            modes = [False, True] if args.pipeline else [False]
            results = {(n, m): [] for n in table for m in modes}
            names = list(table)
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for mode in modes:
                    for name in order:
                        pid, port = procs[name].pid, table[name][1]
                        cpu0, t0 = tree_cpu(pid), time.monotonic()
                        n = wrk(port, args.seconds, mode)
                        cpu, wall = tree_cpu(pid) - cpu0, time.monotonic() - t0
                        results[(name, mode)].append((n / wall, cpu / n * 1e6))
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    ref = "uvicorn uvloop+httptools"
    for mode in modes:
        title = "pipelined x16" if mode else "keep-alive, one request per round trip"
        print(f"\nwrk -t1 -c50, {title} (medians of {args.rounds} rounds of {args.seconds} s)")
        print(f"{'server':28s} {'req/s':>9s} {'x uvicorn':>9s} {'server CPU/req':>15s} "
              f"{'x uvicorn':>9s}")
        med = {n: (statistics.median(x[0] for x in results[(n, mode)]),
                   statistics.median(x[1] for x in results[(n, mode)])) for n in table}
        for name in table:
            rps, cpu = med[name]
            print(f"{name:28s} {rps:9.0f} {rps / med[ref][0]:9.2f} {cpu:12.1f} us "
                  f"{cpu / med[ref][1]:9.2f}")
    print("\nuptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
