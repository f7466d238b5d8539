"""`reactorsvc serve` as a subprocess: every file in configs/ starts and answers, the logs are
JSON lines with the start-up facts, /healthz, /metrics and /debug/events answer, and
SIGTERM/SIGINT drain open connections within the configured grace and exit 0."""

from __future__ import annotations

import datetime
import http.client
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from ..helpers import (
    REPO, TIMEOUT, connect, echo_roundtrip, healthy, http_get, metric_sum, metrics,
    subprocess_env, wait_for, wait_metrics,
)
from reactorsvc.workers.sizing import auto_workers

from .conftest import SINGLE_PROCESS_CONFIGS, START_TIMEOUT, stop, write_config

# Sample names and types; a counter's family is its name without "_total" (the parser's view).
WORKER_METRICS = {
    "reactorsvc_worker_open_connections": "gauge",
    "reactorsvc_worker_connections_total": "counter",
    "reactorsvc_worker_received_bytes_total": "counter",
    "reactorsvc_worker_sent_bytes_total": "counter",
    "reactorsvc_worker_callbacks_total": "counter",
    "reactorsvc_worker_wakeups_total": "counter",
    "reactorsvc_worker_loop_iterations_total": "counter",
    "reactorsvc_worker_errors_total": "counter",
    "reactorsvc_worker_tls_handshake_failures_total": "counter",
    "reactorsvc_worker_accepts_total": "counter",
}
LISTENER_METRICS = {
    "reactorsvc_listener_open_connections": "gauge",
    "reactorsvc_accepts_total": "counter",
    "reactorsvc_rejected_total": "counter",
    "reactorsvc_accept_pauses_total": "counter",
    "reactorsvc_accept_errors_total": "counter",
}
SUPERVISOR_METRICS = {
    "reactorsvc_up": "gauge",
    "reactorsvc_handoffs_total": "counter",
    "reactorsvc_handoff_errors_total": "counter",
    "reactorsvc_worker_restarts_total": "counter",
}
LEVELS = {"debug", "info", "warning", "error"}


def expected_workers(data: dict) -> int:
    workers = data.get("workers", "auto")
    return auto_workers(256) if workers == "auto" else workers


def check_log_lines(events: list[dict]) -> None:
    """Every event has an ISO-8601 UTC timestamp, a known level and an event name."""
    assert events, "no log lines"
    for e in events:
        stamp = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() == datetime.timedelta(0), e
        assert e["level"] in LEVELS, e
        assert isinstance(e["event"], str) and e["event"], e


def check_startup_logs(d, cfg) -> None:
    data = cfg.data
    workers = expected_workers(data)
    starting = d.wait_log("daemon_starting")
    assert starting["config"] == str(cfg.path)
    assert starting["workers"] == workers
    assert starting["listeners"] == [f"{lc['name']}={lc['bind']}" for lc in data["listeners"]]
    assert starting["admin"] == data["admin"]["bind"]
    for name, address in cfg.listeners.items():
        started = d.wait_log("listener_started", listener=name)
        expected = address if isinstance(address, str) else list(address)
        assert started["addresses"] == [expected], started
    server = d.wait_log("server_started")
    assert server["workers"] == workers
    assert server["dispatch"] == data.get("dispatch", "round_robin")
    backend = data.get("backend", {})
    assert server["backend"] in {"epoll", "poll", "select", "kqueue"}
    assert server["backend"] not in backend.get("avoid", [])
    if "O1" in backend.get("require", []):
        assert server["backend"] in {"epoll", "kqueue"}


def check_metric_names(types: dict, samples: dict, workers: int, listeners: list[str]) -> None:
    every = {**WORKER_METRICS, **LISTENER_METRICS, **SUPERVISOR_METRICS}
    for name, kind in every.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        assert types.get(family) == kind, name
    assert len(types) == len(every), sorted(types)  # nothing the tables above do not name
    for name in WORKER_METRICS:
        labels = sorted(dict(lbl)["worker"] for (n, lbl) in samples if n == name)
        assert labels == sorted(str(i) for i in range(workers)), name
    for name in LISTENER_METRICS:
        labels = {dict(lbl)["listener"] for (n, lbl) in samples if n == name}
        assert labels == set(listeners), name
    assert samples[("reactorsvc_up", ())] == 1


def http_keepalive(address: tuple, body: bytes) -> None:
    """Two GETs on one kept-alive connection, each answered with ``body``."""
    conn = http.client.HTTPConnection(*address, timeout=TIMEOUT)
    try:
        socks = []
        for path in ("/", "/again"):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, body)
            assert resp.getheader("Content-Length") == str(len(body))
            assert resp.getheader("Connection") != "close"
            socks.append(conn.sock)
        assert socks[0] is socks[1] and socks[0] is not None, "the connection was not kept alive"
    finally:
        conn.close()


@pytest.mark.parametrize("source", SINGLE_PROCESS_CONFIGS, ids=[p.stem for p in SINGLE_PROCESS_CONFIGS])
def test_every_config_serves(daemon, tmp_path, source):
    cfg = write_config(tmp_path, source)
    d = daemon(cfg)
    workers = expected_workers(cfg.data)
    check_startup_logs(d, cfg)
    assert http_get(cfg.admin, "/healthz") == (200, b"ok\n")
    types, samples = metrics(cfg.admin)
    check_metric_names(types, samples, workers, [lc["name"] for lc in cfg.data["listeners"]])
    assert metric_sum(samples, "reactorsvc_accepts_total") == 0
    assert metric_sum(samples, "reactorsvc_worker_received_bytes_total") == 0

    # Byte-stream services first: their byte counts are exact.
    open_socks, sent, echoed = [], 0, 0
    try:
        for lc in cfg.data["listeners"]:
            if lc["service"] not in ("echo", "discard"):
                continue
            s = connect(cfg.listeners[lc["name"]])
            open_socks.append(s)
            payload = f"hello {lc['name']}\n".encode() * 3
            if lc["service"] == "echo":
                assert echo_roundtrip(s, payload) == payload
                echoed += len(payload)
            else:
                s.sendall(payload)
            sent += len(payload)
        n = len(open_socks)
        wait_metrics(cfg.admin, {
            "reactorsvc_worker_received_bytes_total": sent, "reactorsvc_worker_sent_bytes_total": echoed,
            "reactorsvc_worker_open_connections": n, "reactorsvc_accepts_total": n,
            "reactorsvc_handoffs_total": n})

        http_conns = 0
        for lc in cfg.data["listeners"]:
            if lc["service"] == "http-hello":
                body = lc.get("options", {}).get("body", "Hello, world!\n").encode()
                http_keepalive(cfg.listeners[lc["name"]], body)
                http_conns += 1
        total = len(open_socks) + http_conns
    finally:
        for s in open_socks:
            s.close()
    samples = wait_metrics(cfg.admin, {
        "reactorsvc_worker_open_connections": 0, "reactorsvc_worker_connections_total": total,
        "reactorsvc_accepts_total": total, "reactorsvc_handoffs_total": total})
    bytes_in = metric_sum(samples, "reactorsvc_worker_received_bytes_total")
    assert bytes_in > sent if http_conns else bytes_in == sent  # + the HTTP requests' bytes
    assert metric_sum(samples, "reactorsvc_rejected_total") == 0
    assert metric_sum(samples, "reactorsvc_worker_callbacks_total") > 0

    status, body = http_get(cfg.admin, "/debug/events")
    assert status == 200
    text = body.decode()
    assert "== supervisor ==" in text
    for i in range(workers):
        assert f"== worker-{i} ==" in text
    assert http_get(cfg.admin, "/nope")[0] == 404

    assert stop(d) == 0
    d.wait_log("server_stopped")
    d.wait_log("daemon_exit")
    check_log_lines(d.logs())
    if cfg.data["logging"]["level"] != "debug":
        assert [e for e in d.logs() if e["level"] == "debug"] == []


def test_auto_log_format_without_a_tty_is_json(daemon, tmp_path):
    cfg = write_config(tmp_path, REPO / "configs" / "http.yaml")
    assert cfg.data["logging"]["format"] == "auto"
    d = daemon(cfg, log_format=None)
    assert stop(d) == 0
    check_log_lines(d.logs())  # logs() fails on any line that is not JSON
    assert [e["event"] for e in d.logs()][0] == "daemon_starting"


def read_pty_until(master: int, marker: bytes, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 65536)
    assert marker in out, out
    return out


def test_auto_log_format_on_a_tty_is_console(tmp_path):
    cfg = write_config(tmp_path, REPO / "configs" / "http.yaml")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "reactorsvc", "serve", "-c", str(cfg.path)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                                env=subprocess_env())
        try:
            out = read_pty_until(master, b"server_started", START_TIMEOUT)
            # server_started is logged before the signal handlers are in place (see
            # test_signal_during_start_up_is_handled); /healthz answers once they are.
            wait_for(lambda: healthy(cfg.admin), START_TIMEOUT, "/healthz to answer 200")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
    finally:
        os.close(slave)
        os.close(master)
    first = out.decode().splitlines()[0]
    assert not first.startswith("{"), first
    assert "daemon_starting" in first and "info" in first, first


def test_log_level_option_overrides_the_file(daemon, tmp_path):
    cfg = write_config(tmp_path, REPO / "configs" / "echo.yaml")
    d = daemon(cfg, "--log-level", "warning")
    with connect(cfg.listeners["echo"]) as s:
        assert echo_roundtrip(s, b"x") == b"x"
    assert stop(d) == 0
    assert d.lines() == []  # start-up, connections and stop log at info only


# -- graceful stop ------------------------------------------------------------------------------

def echo_config(tmp_path, grace: float):
    text = (REPO / "configs" / "echo.yaml").read_text()
    assert "  grace: 5 " in text
    return write_config(tmp_path, text.replace("  grace: 5 ", f"  grace: {grace} "))


def wait_draining(cfg) -> None:
    """Poll /healthz until it answers 503 (the daemon is draining)."""
    def draining():
        status, body = http_get(cfg.admin, "/healthz")
        assert status in (200, 503), status
        return (status, body) == (503, b"draining\n")
    wait_for(draining, TIMEOUT, "/healthz to answer 503 while draining", interval=0.01)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_drains_within_grace(daemon, tmp_path, signum):
    cfg = echo_config(tmp_path, 1)
    d = daemon(cfg)
    address = cfg.listeners["echo"]
    with connect(address) as client:
        assert echo_roundtrip(client, b"before") == b"before"
        t0 = time.monotonic()
        d.signal(signum)
        wait_draining(cfg)
        _, samples = metrics(cfg.admin)
        assert samples[("reactorsvc_up", ())] == 0
        # Draining: the open connection is still served; the listener no longer accepts.
        assert echo_roundtrip(client, b"during") == b"during"
        with pytest.raises(ConnectionRefusedError):
            connect(address).close()
        assert d.wait_log("draining")["connections"] == 1
        # The idle client holds the daemon for the whole grace, then its connection is closed.
        assert client.recv(100) == b""
        rc = d.wait(3.0)
        elapsed = time.monotonic() - t0
    assert rc == 0
    assert 1.0 <= elapsed < 3.0, elapsed
    assert d.wait_log("stop_requested")["signal"] == signum
    assert d.wait_log("stop_requested")["grace"] == 1
    assert d.wait_log("closing_connections")["connections"] == 1
    d.wait_log("server_stopped")
    d.wait_log("daemon_exit")


def test_stop_ends_early_when_the_last_connection_closes(daemon, tmp_path):
    cfg = echo_config(tmp_path, 20)
    d = daemon(cfg)
    client = connect(cfg.listeners["echo"])
    try:
        assert echo_roundtrip(client, b"x") == b"x"
        d.signal(signal.SIGTERM)
        wait_draining(cfg)
    finally:
        client.close()
    t0 = time.monotonic()
    assert d.wait(5.0) == 0
    assert time.monotonic() - t0 < 5.0  # far below the 20 s grace
    assert d.events("closing_connections") == []
    d.wait_log("daemon_exit")


def test_second_stop_signal_stops_at_once(daemon, tmp_path):
    cfg = echo_config(tmp_path, 30)
    d = daemon(cfg)
    with connect(cfg.listeners["echo"]) as client:
        assert echo_roundtrip(client, b"x") == b"x"
        d.signal(signal.SIGTERM)
        wait_draining(cfg)
        d.signal(signal.SIGINT)
        assert d.wait(5.0) == 0
        assert client.recv(10) == b""
    assert d.wait_log("stop_now")["signal"] == signal.SIGINT
    d.wait_log("daemon_exit")


def test_bind_failure_exits_1_with_nothing_left(daemon, tmp_path):
    cfg = write_config(tmp_path, REPO / "configs" / "echo.yaml")
    with socket.socket() as holder:
        holder.bind(cfg.listeners["echo"])
        holder.listen(1)
        d = daemon(cfg, ready=False)
        assert d.wait(10.0) == 1
    failed = d.wait_log("start_failed")
    assert failed["level"] == "error"
    assert "Address already in use" in failed["error"], failed
    assert d.events("server_started") == []


def start_and_signal_when_bound(cfg, signum: int) -> tuple[subprocess.Popen, bytes]:
    """Start serve with stderr on a pipe; send ``signum`` the moment a listener is bound."""
    proc = subprocess.Popen([sys.executable, "-m", "reactorsvc", "serve", "-c", str(cfg.path),
                             "--log-format", "json"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env())
    out = b""
    deadline = time.monotonic() + START_TIMEOUT
    while b'"listener_started"' not in out and time.monotonic() < deadline:
        if select.select([proc.stderr], [], [], 0.2)[0]:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    if b'"listener_started"' in out:
        proc.send_signal(signum)
    return proc, out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_during_start_up_is_handled(tmp_path, signum):
    """Once a listener is bound, SIGTERM stops gracefully (exit 0) and SIGHUP does not kill.

    Three tries: the window between binding and the handlers being in place is short.
    """
    cfg = write_config(tmp_path, REPO / "configs" / "echo.yaml")
    for _ in range(3):
        proc, out = start_and_signal_when_bound(cfg, signum)
        try:
            assert b'"listener_started"' in out, out
            if signum == signal.SIGHUP:
                wait_for(lambda: proc.poll() is not None or healthy(cfg.admin), START_TIMEOUT,
                         "the daemon to serve or die")
                assert proc.poll() is None, f"SIGHUP during start-up killed the daemon: " \
                                            f"{proc.returncode}"
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(10)
            assert rc == 0, f"{signal.Signals(signum).name} during start-up: exit {rc}"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            proc.stderr.close()
