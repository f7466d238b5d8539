"""The daemon's `accept: workers`: each worker binds every TCP listener itself (SO_REUSEPORT);
unix: listeners keep the supervisor; a reload binds new listeners per worker as a transaction,
and a change of `accept` is refused by name (restart only)."""

from __future__ import annotations

import signal
import socket

import pytest

from reactorsvc.daemon.config import config_to_yaml, load_config_text

from ..helpers import TIMEOUT, connect, echo_roundtrip, free_ports, metric_sum, metrics
from .conftest import stop, write_config

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")

CONFIG = """\
workers: 2
accept: {accept}
listeners:
  - name: tcp
    bind: 127.0.0.1:{tcp}
    service: echo
    max_connections: 50
  - name: {second}
    bind: {second_bind}
    service: echo
admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: 1
"""


def _text(accept: str, tcp: int, admin: int, second: str, second_bind: str) -> str:
    return CONFIG.format(accept=accept, tcp=tcp, admin=admin, second=second,
                         second_bind=second_bind)


def test_accept_workers_round_trips_through_check_output():
    cfg = load_config_text(_text("workers", 7000, 7001, "b", "127.0.0.1:7002"))
    assert cfg.accept == "workers"
    assert load_config_text(config_to_yaml(cfg)) == cfg


def test_serve_with_accept_workers_and_reload(daemon, tmp_path):
    tcp, admin, other = free_ports(3)
    path = f"unix:{tmp_path}/u.sock"
    cfg = write_config(tmp_path, _text("workers", tcp, admin, "unix", path), rewrite=False)
    d = daemon(cfg)
    started = {e["listener"]: e["accept"] for e in d.events("listener_started")}
    assert started == {"tcp": "workers", "unix": "supervisor"}
    for i in range(20):
        with connect(("127.0.0.1", tcp)) as sock:
            assert echo_roundtrip(sock, b"%d" % i) == b"%d" % i
    unix = socket.socket(socket.AF_UNIX)
    unix.settimeout(TIMEOUT)
    with unix:
        unix.connect(f"{tmp_path}/u.sock")
        assert echo_roundtrip(unix, b"unix") == b"unix"
    _, samples = metrics(("127.0.0.1", admin))
    assert metric_sum(samples, "reactorsvc_worker_accepts_total") == 20
    assert metric_sum(samples, "reactorsvc_handoffs_total") == 1
    per_worker = [samples[("reactorsvc_worker_accepts_total", (("worker", str(i)),))]
                  for i in range(2)]
    assert min(per_worker) >= 1   # 20 connections never all hash to one socket

    # A reload adds a listener bound once per worker; the unix one goes.
    cfg.path.write_text(_text("workers", tcp, admin, "more", f"127.0.0.1:{other}"))
    d.signal(signal.SIGHUP)
    assert d.wait_log("reloaded")["listeners"] == ["more", "tcp"]
    assert d.wait_log("listener_started", listener="more")["accept"] == "workers"
    with connect(("127.0.0.1", other)) as sock:
        assert echo_roundtrip(sock, b"more") == b"more"

    # accept cannot change while running: refused by name, the running config stays.
    cfg.path.write_text(_text("supervisor", tcp, admin, "more", f"127.0.0.1:{other}"))
    d.signal(signal.SIGHUP)
    failed = d.wait_log("reload_failed")
    assert failed["error"] == (f"{cfg.path}:2: accept: accept cannot change while running "
                               "(restart to apply it)")
    with connect(("127.0.0.1", tcp)) as sock:
        assert echo_roundtrip(sock, b"still") == b"still"
    assert stop(d) == 0
