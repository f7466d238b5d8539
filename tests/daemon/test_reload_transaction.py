"""SIGHUP as a transaction: everything new is built and bound before anything running changes;
any failure logs one ``reload_failed`` and the whole old config keeps serving; every option
change takes effect (max_connections included) or is refused by name; no file can freeze the
supervisor."""

from __future__ import annotations

import signal
import socket

import pytest

from ..helpers import connect, echo_roundtrip, free_ports, healthy, recv_exactly
from .conftest import stop, write_config

ONE_ECHO = """\
workers: 1
listeners:
  - name: web
    bind: 127.0.0.1:{port}
    service: echo
    max_connections: {max}
    reuse_port: {reuse}
admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: 1
"""


def _text(port: int, admin: int, max_connections: int = 10, reuse: str = "false") -> str:
    return ONE_ECHO.format(port=port, admin=admin, max=max_connections, reuse=reuse)


def reload(d, cfg, text: str, count: int = 1, event: str = "reloaded") -> dict:
    cfg.path.write_text(text)
    d.signal(signal.SIGHUP)
    return d.wait_log(event, count=count)


def test_moving_a_bind_to_a_busy_port_keeps_the_old_listener(daemon, tmp_path):
    port, busy, admin = free_ports(3)
    cfg = write_config(tmp_path, _text(port, admin), rewrite=False)
    d = daemon(cfg)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen(1)
        failed = reload(d, cfg, _text(busy, admin), event="reload_failed")
        assert failed["listener"] == "web"
        assert failed["key"] == f"{cfg.path}:4: listeners[0].bind"
        assert "Address already in use" in failed["reason"]
        assert d.events("reloaded") == [] and d.events("listener_closed") == []
        with connect(("127.0.0.1", port)) as s:
            assert echo_roundtrip(s, b"still") == b"still"
    assert stop(d) == 0


def test_moving_a_bind_to_a_free_port_moves_it(daemon, tmp_path):
    port, other, admin = free_ports(3)
    cfg = write_config(tmp_path, _text(port, admin), rewrite=False)
    d = daemon(cfg)
    with connect(("127.0.0.1", port)) as kept:
        assert echo_roundtrip(kept, b"a") == b"a"
        reload(d, cfg, _text(other, admin))
        with connect(("127.0.0.1", other)) as s:
            assert echo_roundtrip(s, b"b") == b"b"
        assert echo_roundtrip(kept, b"c") == b"c"  # a reload never closes a connection
    assert stop(d) == 0


def test_max_connections_change_takes_effect(daemon, tmp_path):
    port, admin = free_ports(2)
    cfg = write_config(tmp_path, _text(port, admin, max_connections=1), rewrite=False)
    d = daemon(cfg)
    with connect(("127.0.0.1", port)) as first, connect(("127.0.0.1", port)) as second:
        assert echo_roundtrip(first, b"1") == b"1"
        second.sendall(b"2")  # waits in the backlog: the listener is at its limit
        reload(d, cfg, _text(port, admin, max_connections=2))
        assert recv_exactly(second, 1) == b"2"  # the raised limit let it in
    assert stop(d) == 0


def test_reuse_port_change_is_refused_by_name(daemon, tmp_path):
    port, admin = free_ports(2)
    cfg = write_config(tmp_path, _text(port, admin), rewrite=False)
    d = daemon(cfg)
    failed = reload(d, cfg, _text(port, admin, reuse="true"), event="reload_failed")
    assert failed["listener"] == "web"
    assert "reuse_port cannot change" in failed["reason"]
    assert d.events("reloaded") == []
    with connect(("127.0.0.1", port)) as s:
        assert echo_roundtrip(s, b"x") == b"x"
    assert stop(d) == 0


# Billion laughs: 9 levels of 10 aliases each, where the loader must expand them (the options
# of a listener are handed to the service as plain data).
BOMB = "    options:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))


def test_an_alias_bomb_reload_fails_fast_and_the_daemon_keeps_serving(daemon, tmp_path):
    port, admin = free_ports(2)
    cfg = write_config(tmp_path, _text(port, admin), rewrite=False)
    d = daemon(cfg)
    text = _text(port, admin).replace("    reuse_port: false\n", "    reuse_port: false\n" + BOMB)
    failed = reload(d, cfg, text, event="reload_failed")
    assert "alias bomb" in failed["error"], failed
    assert healthy(cfg.admin)
    with connect(("127.0.0.1", port)) as s:
        assert echo_roundtrip(s, b"x") == b"x"
    assert stop(d) == 0


@pytest.mark.parametrize("taken, listener, key", [("port", "web", "4: listeners[0].bind"),
                                                   ("admin", "admin", "9: admin.bind")])
def test_bind_failure_at_start_names_listener_key_and_reason(daemon, tmp_path, taken, listener,
                                                             key):
    ports = dict(zip(("port", "admin"), free_ports(2)))
    cfg = write_config(tmp_path, _text(ports["port"], ports["admin"]), rewrite=False)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen(1)
        d = daemon(cfg, ready=False)
        assert d.wait(15.0) == 1  # a runtime failure: the file was valid
    [failed] = d.events("start_failed")
    assert (failed["listener"], failed["key"]) == (listener, f"{cfg.path}:{key}")
    assert "Address already in use" in failed["reason"]
    assert failed["error"].startswith(f"{cfg.path}:{key}: listener {listener!r}: ")
