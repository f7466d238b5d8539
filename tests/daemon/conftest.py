"""Helpers for the tests that run the daemon as a subprocess.

- ``free_ports(n)``: distinct TCP ports on 127.0.0.1 that were free a moment ago (the config
  rejects port 0, so a test binds port 0 itself, reads the port, closes, and writes it in).
- ``ConfigFile`` / ``write_config``: a copy of a configs/*.yaml text (or any text) with every
  ``bind:`` rewritten to a fresh port or a Unix socket under the test's directory; the line
  numbers and comments stay those of the original.
- ``Daemon``: ``python -m reactorsvc serve -c FILE --log-format json`` with stderr in a file;
  waits for readiness by polling /healthz with a bound, reads the JSON log lines, sends
  signals. The ``daemon`` fixture starts them and always kills what is left on teardown.
- small clients: ``connect``, ``echo_roundtrip``, ``http_get``, ``parse_metrics``, ``run_cli``.

Every wait here polls a condition with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((REPO / "configs").glob("*.yaml"))
START_TIMEOUT = 15.0   # a daemon start takes ~0.3 s; the bound is for a loaded CI machine
IO_TIMEOUT = 5.0
_BIND_RE = re.compile(r"^(\s*(?:-\s+)?bind:\s*)(\S+)", re.MULTILINE)

Address = Union[tuple, str]  # (host, port) or a Unix socket path


def wait_for(predicate: Callable[[], Any], timeout: float, what: Union[str, Callable[[], str]],
             interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; its value.

    After ``timeout`` seconds the test fails naming ``what`` (a callable is asked then).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {text}")
        time.sleep(interval)


def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct ports of 127.0.0.1 that nothing listened on a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound (and listened on) right now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


@dataclass
class ConfigFile:
    """A config written for one test: its path, text, and where each listener listens."""

    path: Path
    text: str
    data: dict = field(repr=False)

    @property
    def listeners(self) -> dict[str, Address]:
        return {lc["name"]: _address(lc["bind"]) for lc in self.data["listeners"]}

    @property
    def admin(self) -> tuple:
        return _address(self.data["admin"]["bind"])

    def line_of(self, needle: str) -> int:
        """1-based number of the first line containing ``needle``."""
        for number, line in enumerate(self.text.splitlines(), 1):
            if needle in line:
                return number
        raise AssertionError(f"{needle!r} not in {self.path}")


def _address(bind: str) -> Address:
    if bind.startswith("unix:"):
        return bind[len("unix:"):]
    host, _, port = bind.rpartition(":")
    return host, int(port)


def rewrite_binds(text: str, sock_dir: Path) -> str:
    """``text`` with every TCP bind on a fresh free port, every Unix bind under ``sock_dir``."""
    binds = _BIND_RE.findall(text)
    ports = iter(free_ports(len(binds)))

    def fresh(match: re.Match) -> str:
        prefix, value = match.groups()
        if value == "null":
            return match.group(0)
        if value.startswith("unix:"):
            name = Path(value[len("unix:"):]).name
            return f"{prefix}unix:{sock_dir / name}"
        host = value.rpartition(":")[0]
        return f"{prefix}{host}:{next(ports)}"

    return _BIND_RE.sub(fresh, text)


def write_config(tmp_path: Path, source: Union[Path, str], name: str = "daemon.yaml",
                 rewrite: bool = True) -> ConfigFile:
    """Write ``source`` (a configs/ file or YAML text) to tmp_path/name, binds rewritten."""
    text = source.read_text() if isinstance(source, Path) else source
    if rewrite:
        text = rewrite_binds(text, _sock_dir(tmp_path))
    path = tmp_path / name
    path.write_text(text)
    return ConfigFile(path, text, yaml.safe_load(text))


def _sock_dir(tmp_path: Path) -> Path:
    # sun_path holds 107 bytes; pytest's tmp_path is usually far shorter than that.
    assert len(str(tmp_path)) < 80, f"tmp_path too long for a Unix socket: {tmp_path}"
    return tmp_path


def subprocess_env() -> dict[str, str]:
    """The environment for a reactorsvc subprocess: this checkout first on sys.path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    return env


def run_cli(*args: str, cwd: Path | None = None,
            timeout: float = 20.0) -> subprocess.CompletedProcess:
    """``python -m reactorsvc ARGS`` to completion, output captured as text."""
    return subprocess.run([sys.executable, "-m", "reactorsvc", *args], cwd=cwd,
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class Daemon:
    """One ``reactorsvc serve`` subprocess; stderr (the log) goes to a file next to the config."""

    def __init__(self, config: ConfigFile | None, log_path: Path, args: list[str],
                 cwd: Path | None = None) -> None:
        self.config = config
        self.log_path = log_path
        cmd = [sys.executable, "-m", "reactorsvc", "serve", *args]
        with open(log_path, "wb") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log, cwd=cwd,
                                         env=subprocess_env())

    # -- the log ---------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """Complete lines written to stderr so far (a partial last line is left out)."""
        text = self.log_path.read_text(errors="replace")
        return text.split("\n")[:-1]

    def logs(self) -> list[dict]:
        """Every stderr line parsed as a JSON object; fails on a line that is not one."""
        events = []
        for line in self.lines():
            try:
                event = json.loads(line)
            except ValueError:
                pytest.fail(f"stderr line is not JSON: {line!r}")
            assert isinstance(event, dict), line
            events.append(event)
        return events

    def events(self, name: str, **match: Any) -> list[dict]:
        return [e for e in self.logs() if e.get("event") == name
                and all(e.get(k) == v for k, v in match.items())]

    def wait_log(self, name: str, timeout: float = IO_TIMEOUT, count: int = 1,
                 **match: Any) -> dict:
        """The ``count``-th log event called ``name`` (with fields ``match``), waiting for it."""
        return wait_for(lambda: self._nth(name, count, match), timeout,
                        lambda: f"log event {name!r} #{count} {match or ''}; log so far:\n"
                                f"{self.tail()}")

    def _nth(self, name: str, count: int, match: dict) -> dict | None:
        exited = self.proc.poll() is not None  # checked first: after exit the log is complete
        found = self.events(name, **match)
        if len(found) >= count:
            return found[count - 1]
        if exited:
            pytest.fail(f"daemon exited with {self.proc.returncode} without logging {name!r} "
                        f"#{count} {match or ''}:\n{self.tail()}")
        return None

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines()[-n:])

    # -- the process -----------------------------------------------------------------------------

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until GET /healthz on the admin endpoint answers 200."""
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited with {self.proc.returncode} before it was ready:\n"
                            f"{self.tail()}")
            return healthy(self.config.admin)

        wait_for(ready, timeout, "/healthz to answer 200")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit status, failing the test if the daemon is still running after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon still running {timeout} s later:\n{self.tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def daemon(tmp_path):
    """``daemon(config, *args, log_format="json", ready=True, cwd=None) -> Daemon``.

    Starts ``serve -c config.path --log-format json ARGS`` (no --log-format if log_format is
    None), waits for /healthz unless ready=False; every daemon is killed at teardown.
    """
    started: list[Daemon] = []

    def start(config: ConfigFile | None, *args: str, log_format: str | None = "json",
              ready: bool = True, cwd: Path | None = None) -> Daemon:
        argv = ["-c", str(config.path)] if config is not None else []
        if log_format is not None:
            argv += ["--log-format", log_format]
        d = Daemon(config, tmp_path / f"daemon-{len(started)}.log", argv + list(args), cwd=cwd)
        started.append(d)
        if ready:
            d.wait_ready()
        return d

    yield start
    for d in started:
        d.kill()


# -- clients -------------------------------------------------------------------------------------

def connect(address: Address, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A connected blocking socket (TCP or Unix) with a timeout on every operation."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address)
    except BaseException:
        s.close()
        raise
    return s


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes: {data!r}")
        data += chunk
    return data


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    return recv_exactly(sock, len(payload))


def http_get(address: tuple, path: str, timeout: float = IO_TIMEOUT) -> tuple[int, bytes]:
    """(status, body) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def healthy(admin: tuple) -> bool:
    """Whether GET /healthz answers 200 right now (False if nothing listens yet)."""
    try:
        return http_get(admin, "/healthz", timeout=1.0)[0] == 200
    except OSError:
        return False


_SAMPLE_RE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_]\w*="[^"]*",?)*)\})? (\S+)')


def parse_metrics(text: str) -> tuple[dict[str, str], dict[tuple, float]]:
    """Prometheus text format → ({name: type}, {(name, ((label, value), ...)): value}).

    Strict: every line is a HELP, a TYPE or a sample; a sample's TYPE comes before it; no
    sample appears twice.
    """
    types: dict[str, str] = {}
    samples: dict[tuple, float] = {}
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, f"HELP without text: {line!r}"
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"TYPE given twice: {line!r}"
            types[name] = kind
            continue
        m = _SAMPLE_RE.fullmatch(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in types, f"sample before its TYPE: {line!r}"
        key = (name, tuple(re.findall(r'(\w+)="([^"]*)"', labels or "")))
        assert key not in samples, f"sample given twice: {line!r}"
        samples[key] = float(value)
    return types, samples


def metrics(admin: tuple) -> tuple[dict[str, str], dict[tuple, float]]:
    status, body = http_get(admin, "/metrics")
    assert status == 200, body
    return parse_metrics(body.decode())


def metric_sum(samples: dict[tuple, float], name: str) -> float:
    """The sum of one metric over all its label sets (e.g. over workers)."""
    values = [v for (n, _), v in samples.items() if n == name]
    assert values, f"no samples of {name}"
    return sum(values)


def wait_metrics(admin: tuple, expected: dict[str, float], timeout: float = IO_TIMEOUT) -> dict:
    """Poll /metrics until each named metric, summed over its label sets, equals its value.

    The counters are updated by the worker threads right after the syscalls they count, so a
    client can see its echo before the daemon's counter moves: wait, don't read once.
    Returns the last samples.
    """
    last: dict = {}

    def matches() -> bool:
        last["samples"] = metrics(admin)[1]
        last["sums"] = {name: metric_sum(last["samples"], name) for name in expected}
        return last["sums"] == expected

    deadline = time.monotonic() + timeout
    while not matches():
        if time.monotonic() >= deadline:
            pytest.fail(f"metrics still {last['sums']} after {timeout} s, expected {expected}")
        time.sleep(0.02)
    return last["samples"]


def stop(d: Daemon, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    d.signal(signum)
    return d.wait(timeout)
