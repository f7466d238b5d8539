"""`make bench` needs nothing outside the repository: the echo load generator is the project's
own (benchmarks/loadgen/), and the Makefile builds build/loadgen from there."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_make_bench_references_nothing_outside_the_repo():
    if shutil.which("make") is None:
        pytest.skip("`make` is not installed")
    # -B: print every rule's commands, even those whose targets are up to date here.
    dry = subprocess.run(["make", "-n", "-B", "bench"], cwd=REPO, capture_output=True, text=True,
                         timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert "benchmarks/loadgen/loadgen.c" in dry.stdout
    assert "../" not in dry.stdout, dry.stdout


@pytest.mark.timeout(60)
def test_loadgen_builds_in_a_copy_with_no_shared_folder_beside_it(tmp_path):
    for tool in ("make", "gcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed")
    copy = tmp_path / "clone"
    copy.mkdir()
    shutil.copy(REPO / "Makefile", copy)
    shutil.copytree(REPO / "benchmarks" / "loadgen", copy / "benchmarks" / "loadgen")
    assert not (tmp_path / "shared").exists()
    built = subprocess.run(["make", "build/loadgen"], cwd=copy, capture_output=True, text=True,
                           timeout=50)
    assert built.returncode == 0, built.stdout + built.stderr
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        served = threading.Thread(target=_echo_one, args=(lsock,))
        served.start()
        try:
            run = subprocess.run([str(copy / "build" / "loadgen"), "-p",
                                  str(lsock.getsockname()[1]), "-c", "1", "-t", "0.2",
                                  "-w", "0.05"], capture_output=True, text=True, timeout=20)
        finally:
            served.join(10)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["bench"] == "echo" and figures["round_trips"] > 0, figures


def _echo_one(lsock: socket.socket) -> None:
    """Echo one connection until the peer goes (loadgen resets its connections at the end)."""
    lsock.settimeout(10)
    conn, _ = lsock.accept()
    with conn:
        conn.settimeout(10)
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except ConnectionResetError:
            pass
