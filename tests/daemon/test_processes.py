"""`processes: N`: the master and its forked children, as real processes.

The master binds and forks N children (seen in /proc); a child killed with SIGKILL is
replaced while its siblings keep answering; SIGHUP under keep-alive load rolls the children
with 0 failed requests and the new ones serve the new options; a broken file changes
nothing; SIGTERM under load leaves no request sent and unanswered; a child that cannot
start is retried with back-off, not in a fork loop; a master killed with SIGKILL leaves no
orphan behind; /metrics carries every child's figures with a process label.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from ..helpers import connect, echo_roundtrip, healthy, http_get, metrics, wait_for
from .conftest import MULTI_PROCESS_CONFIGS, stop, write_config
from .httpload import HttpLoad

pytestmark = pytest.mark.timeout(60)

CONFIG = """\
processes: 2
workers: 1
listeners:
  - name: http
    bind: 127.0.0.1:1
    service: http-hello
    options:
      body: "{body}\\n"
  - name: echo
    bind: 127.0.0.1:1
    service: echo
admin:
  bind: 127.0.0.1:1
shutdown:
  grace: {grace}
"""


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def start(daemon, tmp_path: Path, body: str = "one", grace: float = 5, text: str | None = None):
    cfg = write_config(tmp_path, text or CONFIG.format(body=body, grace=grace))
    d = daemon(cfg)
    kids = wait_for(lambda: len(children_of(d.proc.pid)) == cfg.data["processes"]
                    and children_of(d.proc.pid), 10, "the children to exist")
    d.wait_log("master_ready")
    return cfg, d, kids


def test_master_forks_children_that_share_the_sockets(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path)
    assert len(kids) == 2
    ready = d.wait_log("master_ready")
    assert sorted(ready["pids"]) == kids
    for _ in range(4):
        assert http_get(cfg.listeners["http"], "/") == (200, b"one\n")
    with connect(cfg.listeners["echo"]) as s:
        assert echo_roundtrip(s, b"ping") == b"ping"
    # Every child's figures, labelled; the standard process metrics of each process.
    def labelled():
        types, samples = metrics(cfg.admin)
        procs = {dict(lbl).get("process") for (n, lbl) in samples if n == "reactorsvc_accepts_total"}
        return (types, samples) if procs == {"0", "1"} else None
    types, samples = wait_for(labelled, 10, "both children's figures in /metrics")
    assert types["process_cpu_seconds"] == "counter"  # the parser names a counter's family so
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
        procs = {dict(lbl)["process"] for (n, lbl) in samples if n == name}
        assert procs == {"master", "0", "1"}, name
    assert samples[("reactorsvc_processes_serving", ())] == 2
    status, body = http_get(cfg.admin, "/debug/events")
    assert status == 200 and body.count(b"== supervisor ==") == 2, body[:500]
    assert stop(d) == 0
    assert not any(alive(pid) for pid in kids)


def test_killed_child_is_replaced_and_siblings_keep_serving(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path)
    os.kill(kids[0], signal.SIGKILL)
    d.wait_log("child_exited", pid=kids[0])
    for _ in range(4):  # the sibling answers at once: the queue is shared
        assert http_get(cfg.listeners["http"], "/") == (200, b"one\n")
    fresh = wait_for(lambda: (k := children_of(d.proc.pid)) and len(k) == 2 and kids[0] not in k
                     and k, 5, "a replacement child")
    assert kids[1] in fresh
    d.wait_log("child_ready", count=3)
    assert healthy(cfg.admin)
    assert stop(d) == 0


def test_sighup_rolls_children_under_load_without_a_failure(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path, body="one")
    with HttpLoad(cfg.listeners["http"], clients=4, per_connection=10) as load:
        load.wait_ok(50)
        cfg.path.write_text(cfg.text.replace('body: "one', 'body: "two'))
        d.signal(signal.SIGHUP)
        d.wait_log("reloaded", timeout=20)
        wait_for(lambda: b"two\n" in load.bodies, 10, "an answer of a new child")
        wait_for(lambda: not set(kids) & set(children_of(d.proc.pid)), 15,
                 "the old children to finish draining")
        mark = time.monotonic()
        load.wait_ok(50)
    assert load.failed == 0, load.failures[:5]
    assert load.refused == 0
    assert load.bodies[b"two\n"] > mark and load.bodies[b"one\n"] < mark
    assert len(children_of(d.proc.pid)) == 2
    assert stop(d) == 0


def test_broken_file_on_sighup_changes_nothing(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path)
    cfg.path.write_text(cfg.text.replace("processes: 2", "processes: 0"))
    d.signal(signal.SIGHUP)
    failed = d.wait_log("reload_failed")
    assert f"{cfg.path}:1: processes:" in failed["error"], failed
    assert children_of(d.proc.pid) == kids
    assert http_get(cfg.listeners["http"], "/") == (200, b"one\n")
    assert stop(d) == 0


def test_sigterm_under_load_leaves_nothing_unanswered(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path, grace=10)
    with HttpLoad(cfg.listeners["http"], clients=4, per_connection=40) as load:
        load.wait_ok(40)
        load.no_reconnect()  # connections already accepted are the ones a drain must finish
        d.signal(signal.SIGTERM)
        assert d.wait(20) == 0
        wait_for(lambda: load.connections_open() == 0, 10, "the clients to finish")
    assert load.failed == 0, load.failures[:5]
    assert not any(alive(pid) for pid in kids)


def test_child_that_cannot_start_is_retried_with_backoff(daemon, tmp_path):
    # Fine in the master (which validates the config), raises in every forked child.
    (tmp_path / "childfails.py").write_text(
        "import os\nfrom reactorsvc import Protocol\n_MASTER = os.getpid()\n\n"
        "class Service(Protocol):\n"
        "    @staticmethod\n"
        "    def validate_options(**options):\n"
        "        if os.getpid() != _MASTER:\n"
        "            raise RuntimeError('this service refuses to run in a child')\n"
        "        return options\n\n"
        "    def connection_made(self, transport):\n"
        "        transport.close()\n")
    text = CONFIG.format(body="x", grace=1).replace("service: echo", "service: childfails:Service")
    cfg = write_config(tmp_path, text)
    d = daemon(cfg, ready=False, cwd=tmp_path)
    loop = d.wait_log("child_crash_loop", slot=0, timeout=15)
    d.wait_log("child_start_failed")
    # The third failure in a row: two replacements so far, each after a doubling delay.
    assert loop["failures"] == 3 and loop["retry_in"] == 1.0, loop
    assert len(d.events("child_started", slot=0)) == 3
    assert not healthy(cfg.admin)
    assert http_get(cfg.admin, "/healthz")[0] == 503
    assert stop(d) == 0


def test_children_of_a_killed_master_exit(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path)
    d.proc.kill()
    d.proc.wait(5)
    wait_for(lambda: not any(alive(pid) for pid in kids), 15, "the orphaned children to exit")


@pytest.mark.parametrize("source", MULTI_PROCESS_CONFIGS, ids=[p.stem for p in MULTI_PROCESS_CONFIGS])
def test_example_config_runs_a_master(daemon, tmp_path, source):
    cfg = write_config(tmp_path, source)
    d = daemon(cfg)
    d.wait_log("master_ready")
    assert len(children_of(d.proc.pid)) == cfg.data["processes"]
    body = cfg.data["listeners"][0]["options"]["body"].encode()
    assert http_get(cfg.listeners["http"], "/") == (200, body)
    with connect(cfg.listeners["echo"]) as s:
        assert echo_roundtrip(s, b"hello") == b"hello"
    assert stop(d) == 0


@pytest.mark.parametrize("processes", [1, 2])
def test_health_delay_says_503_while_still_serving(daemon, tmp_path, processes):
    text = CONFIG.format(body="one", grace=2).replace("processes: 2", f"processes: {processes}")
    cfg = write_config(tmp_path, text + "  health_delay: 2\n")
    d = daemon(cfg)
    d.signal(signal.SIGTERM)
    wait_for(lambda: http_get(cfg.admin, "/healthz")[0] == 503, 5, "/healthz to say 503")
    # The drain phase: the balancer is told to go away, and the daemon still answers meanwhile.
    assert http_get(cfg.listeners["http"], "/") == (200, b"one\n")
    assert d.wait(15) == 0


def test_bind_error_ends_the_start_before_any_child(daemon, tmp_path):
    cfg = write_config(tmp_path, CONFIG.format(body="one", grace=1))
    with socket.socket() as taken:
        taken.bind(cfg.listeners["echo"])
        taken.listen(1)
        d = daemon(cfg, ready=False)
        assert d.wait(15) == 1
    failed = d.wait_log("start_failed")
    assert failed["listener"] == "echo" and "cannot bind" in failed["error"], failed
    assert not d.events("child_started")


def test_sigint_to_the_process_group_is_one_drain(daemon, tmp_path):
    """Ctrl-C signals every process of the group: the children leave the stop to the master
    (no replacement is forked), and all exit 0."""
    cfg, d, kids = start(daemon, tmp_path)
    for pid in [*kids, d.proc.pid]:  # what a terminal's Ctrl-C does (the group is pytest's too)
        os.kill(pid, signal.SIGINT)
    assert d.wait(15) == 0
    assert not d.events("child_started", generation=0)[2:], "a child was replaced during the stop"
    assert all(e["exit"] == "status 0" for e in d.events("child_exited"))
