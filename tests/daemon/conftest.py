"""Helpers for the tests that run the daemon as a subprocess.

- ``ConfigFile`` / ``write_config``: a copy of a configs/*.yaml text (or any text) with every
  ``bind:`` rewritten to a fresh port (the config rejects port 0, so helpers.free_ports) or a Unix socket under the test's directory; the line
  numbers and comments stay those of the original.
- ``Daemon``: ``python -m reactorsvc serve -c FILE --log-format json`` with stderr in a file;
  waits for readiness by polling /healthz with a bound, reads the JSON log lines, sends
  signals. The ``daemon`` fixture starts them and always kills what is left on teardown.
- ``run_cli``; the clients, ports, waits and /metrics helpers are tests/helpers.py's.

Every wait here polls a condition with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pytest
import yaml

from ..helpers import REPO, TIMEOUT, Address, free_ports, healthy, subprocess_env, wait_for

CONFIG_FILES = sorted((REPO / "configs").glob("*.yaml"))
# Configs with processes > 1 run a master and forked children: their start-up logs and /metrics
# (process labels) differ, so tests/daemon/test_processes.py runs them, not test_daemon.py.
MULTI_PROCESS_CONFIGS = sorted(p for p in CONFIG_FILES if p.name == "processes.yaml")
SINGLE_PROCESS_CONFIGS = [p for p in CONFIG_FILES if p not in MULTI_PROCESS_CONFIGS]
START_TIMEOUT = 15.0   # a daemon start takes ~0.3 s; the bound is for a loaded CI machine
_BIND_RE = re.compile(r"^(\s*(?:-\s+)?bind:\s*)(\S+)", re.MULTILINE)


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


def run_cli(*args: str, cwd: Path | None = None,
            timeout: float = 20.0) -> subprocess.CompletedProcess:
    """``python -m reactorsvc ARGS`` to completion, output captured as text."""
    return subprocess.run([sys.executable, "-m", "reactorsvc", *args], cwd=cwd,
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class Daemon:
    """One ``reactorsvc serve`` subprocess; stderr (the log) goes to a file next to the config."""

    def __init__(self, config: ConfigFile | None, log_path: Path, args: list[str],
                 cwd: Path | None = None, env: dict[str, str] | None = None,
                 pass_fds: tuple = (), wrapper: list[str] | None = None) -> None:
        """``env``: extra environment variables; ``wrapper``: a command line put in front
        (e.g. a shell that moves an inherited fd into place); ``pass_fds`` as Popen's."""
        self.config = config
        self.log_path = log_path
        cmd = [*(wrapper or []), sys.executable, "-m", "reactorsvc", "serve", *args]
        with open(log_path, "wb") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log, cwd=cwd,
                                         env={**subprocess_env(), **(env or {})},
                                         pass_fds=pass_fds)

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

    def wait_log(self, name: str, timeout: float = TIMEOUT, count: int = 1,
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
    """``daemon(config, *args, log_format="json", ready=True, cwd=None, env=, pass_fds=,
    wrapper=) -> Daemon``.

    Starts ``serve -c config.path --log-format json ARGS`` (no --log-format if log_format is
    None), waits for /healthz unless ready=False; every daemon is killed at teardown.
    """
    started: list[Daemon] = []

    def start(config: ConfigFile | None, *args: str, log_format: str | None = "json",
              ready: bool = True, cwd: Path | None = None, **popen: Any) -> Daemon:
        argv = ["-c", str(config.path)] if config is not None else []
        if log_format is not None:
            argv += ["--log-format", log_format]
        d = Daemon(config, tmp_path / f"daemon-{len(started)}.log", argv + list(args), cwd=cwd,
                   **popen)
        started.append(d)
        if ready:
            d.wait_ready()
        return d

    yield start
    for d in started:
        d.kill()


def stop(d: Daemon, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    d.signal(signum)
    return d.wait(timeout)
