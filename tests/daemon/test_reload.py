"""SIGHUP: the daemon re-reads its file. New listeners bind, removed ones stop accepting while
their connections go on, the log level and service options apply live (to new connections),
and a broken file is logged with its FILE:LINE error while the old config keeps serving."""

from __future__ import annotations

import http.client
import signal
import socket

import pytest

from ..helpers import (
    TIMEOUT, connect, echo_roundtrip, free_ports, http_get, metrics, recv_exactly, wait_metrics,
)
from .conftest import stop, write_config

TWO_ECHOES = """\
workers: 2
listeners:
  - name: keep
    bind: 127.0.0.1:{keep}
    service: echo
  - name: {second}
    bind: 127.0.0.1:{port}
    service: echo
logging:
  level: info
admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: 1
"""

HTTP = """\
workers: 1
listeners:
  - name: web
    bind: 127.0.0.1:{web}
    service: http-hello
    options:
      body: "{body}"
logging:
  level: {level}
admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: 1
"""


def reload(d, cfg, text: str, count: int, event: str = "reloaded") -> dict:
    """Rewrite the daemon's file, send SIGHUP, return the ``count``-th ``event`` logged."""
    cfg.path.write_text(text)
    d.signal(signal.SIGHUP)
    return d.wait_log(event, count=count)


def test_new_listener_binds_and_removed_one_keeps_its_connections(daemon, tmp_path):
    keep, old, new, admin = free_ports(4)
    cfg = write_config(tmp_path, TWO_ECHOES.format(keep=keep, second="old", port=old, admin=admin),
                       rewrite=False)
    d = daemon(cfg)
    with connect(("127.0.0.1", old)) as on_old:
        assert echo_roundtrip(on_old, b"before") == b"before"
        done = reload(d, cfg, TWO_ECHOES.format(keep=keep, second="new", port=new, admin=admin), 1)
        assert done["listeners"] == ["keep", "new"]
        assert done["path"] == str(cfg.path)
        d.wait_log("listener_closed", listener="old")
        assert d.wait_log("listener_started", listener="new")["addresses"] == [["127.0.0.1", new]]
        with connect(("127.0.0.1", new)) as on_new:
            assert echo_roundtrip(on_new, b"new one") == b"new one"
        with pytest.raises(ConnectionRefusedError):
            connect(("127.0.0.1", old)).close()
        # The connection accepted by the removed listener is still served.
        assert echo_roundtrip(on_old, b"after") == b"after"
        with connect(("127.0.0.1", keep)) as on_keep:
            assert echo_roundtrip(on_keep, b"kept") == b"kept"
        assert d.events("listener_closed", listener="keep") == []
    assert stop(d) == 0


def bad_request(address: tuple) -> tuple[bytes, tuple]:
    """Send a malformed request line; (the whole answer, our address): the server closes."""
    with connect(address) as s:
        s.sendall(b"NOT HTTP\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        return answer, s.getsockname()


def test_log_level_change_applies_live(daemon, tmp_path):
    web, admin = free_ports(2)
    cfg = write_config(tmp_path, HTTP.format(web=web, admin=admin, body="x", level="info"),
                       rewrite=False)
    d = daemon(cfg)
    answer, _ = bad_request(("127.0.0.1", web))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    reload(d, cfg, HTTP.format(web=web, admin=admin, body="x", level="debug"), 1)
    # The first rejection was logged at debug while the level was info: it must not show.
    assert d.events("http_request_rejected") == []
    answer, client = bad_request(("127.0.0.1", web))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    rejected = d.wait_log("http_request_rejected")
    assert (rejected["level"], rejected["status"]) == ("debug", 400)
    assert rejected["peer"] == list(client)
    assert len(d.events("http_request_rejected")) == 1
    assert stop(d) == 0


def get_on(conn: http.client.HTTPConnection) -> bytes:
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200
    return resp.read()


def test_service_options_apply_to_new_connections(daemon, tmp_path):
    web, admin = free_ports(2)
    cfg = write_config(tmp_path, HTTP.format(web=web, admin=admin, body="one", level="info"),
                       rewrite=False)
    d = daemon(cfg)
    before = http.client.HTTPConnection("127.0.0.1", web, timeout=TIMEOUT)
    try:
        assert get_on(before) == b"one"
        sock = before.sock
        reload(d, cfg, HTTP.format(web=web, admin=admin, body="two", level="info"), 1)
        assert http_get(("127.0.0.1", web), "/") == (200, b"two")
        # The connection made before the reload keeps the protocol it was made with.
        assert get_on(before) == b"one"
        assert before.sock is sock
    finally:
        before.close()
    # Same bind: the listener was updated in place, never closed.
    assert d.events("listener_closed") == []
    assert stop(d) == 0


def test_broken_file_is_logged_and_the_old_config_stays(daemon, tmp_path):
    keep, second, extra, admin = free_ports(4)
    good = TWO_ECHOES.format(keep=keep, second="second", port=second, admin=admin)
    cfg = write_config(tmp_path, good, rewrite=False)
    d = daemon(cfg)
    # A new listener, then an error further down: nothing of the new file may apply.
    broken = good.replace("logging:\n", f"  - name: extra\n    bind: 127.0.0.1:{extra}\n"
                          "    service: echo\nlogging:\n").replace("grace: 1", "grace: -1")
    lines = broken.splitlines()
    line = lines.index("  grace: -1") + 1
    failed = reload(d, cfg, broken, 1, event="reload_failed")
    assert failed["level"] == "error"
    assert failed["error"] == f"{cfg.path}:{line}: shutdown.grace: grace must be a finite " \
                              "number of seconds > 0, got -1"
    assert d.events("reloaded") == []
    assert d.events("listener_started", listener="extra") == []
    with pytest.raises(ConnectionRefusedError):
        connect(("127.0.0.1", extra)).close()
    for port in (keep, second):
        with connect(("127.0.0.1", port)) as s:
            assert echo_roundtrip(s, b"still here") == b"still here"
    assert http_get(cfg.admin, "/healthz") == (200, b"ok\n")
    # Fixed, the same file reloads.
    done = reload(d, cfg, broken.replace("grace: -1", "grace: 1"), 1)
    assert done["listeners"] == ["extra", "keep", "second"]
    with connect(("127.0.0.1", extra)) as s:
        assert echo_roundtrip(s, b"now") == b"now"
    assert stop(d) == 0


def test_settings_that_need_a_restart_are_refused_by_name(daemon, tmp_path):
    """A reload is all or nothing: a workers change refuses the whole file, by key and line,
    and the new listener written beside it is not started."""
    keep, second, late, admin = free_ports(4)
    text = TWO_ECHOES.format(keep=keep, second="second", port=second, admin=admin)
    cfg = write_config(tmp_path, text, rewrite=False)
    d = daemon(cfg)
    changed = TWO_ECHOES.format(keep=keep, second="late", port=late, admin=admin)
    failed = reload(d, cfg, changed.replace("workers: 2", "workers: 3"), 1, event="reload_failed")
    assert failed["level"] == "error"
    assert failed["error"] == (f"{cfg.path}:1: workers: workers cannot change while running "
                               "(restart to apply it)")
    assert d.events("reloaded") == [] and d.events("listener_started", listener="late") == []
    _, samples = metrics(cfg.admin)
    assert len([k for k in samples if k[0] == "reactorsvc_worker_open_connections"]) == 2
    with connect(("127.0.0.1", second)) as s:
        assert echo_roundtrip(s, b"x") == b"x"
    assert stop(d) == 0


def test_new_listener_on_a_taken_port_fails_the_reload_and_nothing_changes(daemon, tmp_path):
    keep, second, taken, admin = free_ports(4)
    cfg = write_config(tmp_path, TWO_ECHOES.format(keep=keep, second="second", port=second,
                                                   admin=admin), rewrite=False)
    d = daemon(cfg)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen(1)
        text = TWO_ECHOES.format(keep=keep, second="late", port=taken, admin=admin)
        failed = reload(d, cfg, text, 1, event="reload_failed")
    line = text.splitlines().index(f"    bind: 127.0.0.1:{taken}") + 1
    assert (failed["level"], failed["listener"]) == ("error", "late")
    assert failed["key"] == f"{cfg.path}:{line}: listeners[1].bind"
    assert "Address already in use" in failed["reason"], failed
    assert d.events("listener_closed", listener="second") == [] and d.events("reloaded") == []
    with connect(("127.0.0.1", second)) as s:  # the listener it would have replaced still serves
        assert echo_roundtrip(s, b"x") == b"x"
        wait_metrics(cfg.admin, {"reactorsvc_worker_open_connections": 1})
    # The port is free now: the same file reloads, and no stale state (KeyError) is left.
    done = reload(d, cfg, text, 1)
    assert done["listeners"] == ["keep", "late"]
    with connect(("127.0.0.1", taken)) as s:
        assert echo_roundtrip(s, b"y") == b"y"
    assert stop(d) == 0


def test_reload_keeps_counting(daemon, tmp_path):
    """The metrics survive a reload: counters are never reset by it."""
    keep, second, admin = free_ports(3)
    text = TWO_ECHOES.format(keep=keep, second="second", port=second, admin=admin)
    cfg = write_config(tmp_path, text, rewrite=False)
    d = daemon(cfg)
    with connect(("127.0.0.1", keep)) as s:
        s.sendall(b"12345")
        assert recv_exactly(s, 5) == b"12345"
    reload(d, cfg, text, 1)
    with connect(("127.0.0.1", second)) as s:
        assert echo_roundtrip(s, b"678") == b"678"
    wait_metrics(cfg.admin, {"reactorsvc_worker_received_bytes_total": 8,
                             "reactorsvc_worker_sent_bytes_total": 8,
                             "reactorsvc_accepts_total": 2})
    assert stop(d) == 0
