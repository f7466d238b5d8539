"""The README's set-up from a fresh clone: `make run` creates .venv, installs, and serves the
built-in default (echo on 127.0.0.1:7000, admin on 127.0.0.1:9100); SIGTERM to the process
group stops it cleanly and leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import (
    REPO, connect, echo_roundtrip, healthy, metric_sum, metrics, port_is_free, wait_for,
)

INSTALL_TIMEOUT = 300.0  # venv + pip install from the package index, incl. compiling the hot path (setup.py)


def clean_env() -> dict[str, str]:
    """The environment of a user at a shell: not this test run's venv, paths or make."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONWARNINGS",
                        "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON", "VENV", "COMPILE",  # make exports its command-line variables
                        "REACTORSVC_COMPILE", "REACTORSVC_PURE")}  # and the build it runs
    venv_bin = str(Path(os.environ["VIRTUAL_ENV"]) / "bin") if "VIRTUAL_ENV" in os.environ else None
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def runs_under_users_python3() -> bool:
    """Whether this interpreter (or the one this venv was made from) is python3 on the PATH."""
    found = subprocess.run(["python3", "-c", "import sys; print(sys.base_prefix)"],
                           capture_output=True, text=True, timeout=30, env=clean_env())
    return found.returncode == 0 and found.stdout.strip() == sys.base_prefix


def group_members(pgid: int) -> list[str]:
    """Live (not zombie) processes of a process group, as "pid command" strings."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # Fields after "(comm)": state ppid pgrp ...; comm may contain spaces.
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            found.append(f"{entry.name} {comm}")
    return found


def serving(proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"`make run` exited with {proc.returncode} before serving:\n"
                    f"{log.read_text(errors='replace')[-3000:]}")
    return healthy(("127.0.0.1", 9100))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_make_run_from_a_fresh_clone(tmp_path):
    if os.environ.get("REACTORSVC_PURE") == "1":
        # The same install as the compiled pass's (CI runs the suite in one venv twice).
        pytest.skip("REACTORSVC_PURE=1: the install this follows is the compiled pass's")
    if not runs_under_users_python3():
        # `make run` uses the user's python3 whatever runs pytest: under another interpreter
        # (CI's free-threaded pass) this would be the python3 pass's test again, 50 s of it.
        pytest.skip("pytest runs under another interpreter than python3, which `make run` uses; "
                    "the suite under python3 runs this")
    for tool in ("git", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed: cannot follow the README")
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to check that nothing is left running")
    for port in (7000, 9100):
        if not port_is_free(port):
            pytest.skip(f"127.0.0.1:{port} is in use; the built-in default config needs it")
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=60,
                   capture_output=True, env=clean_env())
    assert not (clone / ".venv").exists()
    # The second README command, dry-run: it would build the venv and run pytest.
    dry = subprocess.run(["make", "-n", "test"], cwd=clone, capture_output=True, text=True,
                         timeout=30, env=clean_env())
    assert dry.returncode == 0 and "-m venv .venv" in dry.stdout and ".venv/bin/pytest" in dry.stdout, dry

    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["make", "run"], cwd=clone, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, env=clean_env())
    try:
        wait_for(lambda: serving(proc, log), INSTALL_TIMEOUT, "`make run` to serve /healthz")
        with connect(("127.0.0.1", 7000)) as s:
            assert echo_roundtrip(s, b"hello from the README\n") == b"hello from the README\n"
        _, samples = metrics(("127.0.0.1", 9100))
        assert metric_sum(samples, "reactorsvc_accepts_total") == 1
        os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait(20)
        wait_for(lambda: not group_members(proc.pid), 15, "the daemon to exit")
    finally:
        if group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)

    output = log.read_text(errors="replace")
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    starting = events[names.index("daemon_starting")]
    assert starting["config"] == "<built-in default>"
    assert starting["listeners"] == ["echo=127.0.0.1:7000"]
    assert starting["admin"] == "127.0.0.1:9100"
    assert events[names.index("stop_requested")]["signal"] == signal.SIGTERM
    assert names[-1] == "daemon_exit", output[-3000:]
    # make got the SIGTERM too: it either passes on the daemon's 0 or dies of the signal.
    assert rc in (0, -signal.SIGTERM), (rc, output[-3000:])
    assert port_is_free(7000) and port_is_free(9100)
    # make says what it does while it installs, and nothing else (pip's output is in a log).
    said = [line for line in output.splitlines() if not line.startswith("{")]
    assert said[:2] == ["make: creating .venv with python3",
                        "make: installing reactorsvc and its dependencies (structlog, PyYAML, httptools) "
                        "into .venv and compiling its hot path"], said
    assert said[2].startswith("make: starting the daemon") and "127.0.0.1:7000" in said[2] \
        and "127.0.0.1:9100" in said[2], said
    assert all(line.startswith("make") for line in said), said
