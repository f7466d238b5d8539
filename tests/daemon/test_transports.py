"""The daemon's `tls:` listeners and `udp:` binds, as a subprocess: echo over TLS with Python's
ssl module, curl --cacert on http-hello, mutual TLS, failed handshakes in /metrics, certificate
rotation on SIGHUP without dropping connections, UDP echo, and `check` errors at FILE:LINE."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess

import pytest

from ..helpers import TIMEOUT as IO_TIMEOUT
from ..helpers import free_ports, metric_sum, wait_metrics
from .conftest import run_cli, stop, write_config

CONFIG = """\
workers: 2
listeners:
  - name: tls-echo
    bind: 127.0.0.1:{tls}
    service: echo
    tls:
      cert: {cert}
      key: {key}
  - name: mtls
    bind: 127.0.0.1:{mtls}
    service: echo
    tls: {{cert: {cert}, key: {key}, client_ca: {ca}, min_version: "1.3"}}
  - name: web
    bind: 127.0.0.1:{web}
    service: http-hello
    tls: {{cert: {cert}, key: {key}}}
  - name: dgram
    bind: udp:127.0.0.1:{udp}
    service: echo
admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: 1
"""


def _config(tmp_path, tls_certs, **override):
    ports = dict(zip(("tls", "mtls", "web", "udp", "admin"), free_ports(5)))
    files = {"cert": tmp_path / "server.pem", "key": tmp_path / "server.key", "ca": tls_certs.ca}
    shutil.copy(tls_certs.server_cert, files["cert"])
    shutil.copy(tls_certs.server_key, files["key"])
    values = {**ports, **files, **override}
    return write_config(tmp_path, CONFIG.format(**values), rewrite=False), ports


def _tls(tls_certs, port, with_cert=False):
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    return tls_certs.client_context(with_cert).wrap_socket(raw, server_hostname="localhost")


def _echo(sock, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "closed before the echo"
        got += chunk
    return got


@pytest.mark.timeout(60)
def test_tls_mtls_https_and_udp_listeners(daemon, tmp_path, tls_certs):
    cfg, ports = _config(tmp_path, tls_certs)
    d = daemon(cfg)
    with _tls(tls_certs, ports["tls"]) as c:
        assert _echo(c, b"over tls") == b"over tls"
        assert c.version() in ("TLSv1.2", "TLSv1.3")
    with _tls(tls_certs, ports["mtls"], with_cert=True) as c:
        assert _echo(c, b"mutual") == b"mutual" and c.version() == "TLSv1.3"
    with _tls(tls_certs, ports["mtls"]) as c:  # no client certificate: refused
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            c.sendall(b"x")
            c.recv(10)
    with socket.create_connection(("127.0.0.1", ports["tls"]), timeout=IO_TIMEOUT) as plain:
        plain.sendall(b"plain text, not TLS\r\n\r\n")
        try:
            while plain.recv(4096):
                pass
        except ConnectionResetError:
            pass
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(tls_certs.ca),
                              "--resolve", f"localhost:{ports['web']}:127.0.0.1",
                              f"https://localhost:{ports['web']}/"], capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(b"Hello")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(IO_TIMEOUT)
        for i in range(5):
            u.sendto(b"datagram %d" % i, ("127.0.0.1", ports["udp"]))
            assert u.recvfrom(100) == (b"datagram %d" % i, ("127.0.0.1", ports["udp"]))
    admin = ("127.0.0.1", ports["admin"])
    samples = wait_metrics(admin, {"reactorsvc_worker_tls_handshake_failures_total": 2})
    assert metric_sum(samples, "reactorsvc_worker_tls_handshake_failures_total") == 2
    assert d.events("tls_handshake_failed") and not d.events("protocol_callback_failed")
    assert stop(d) == 0


def _new_server_cert(tls_certs, tmp_path, serial: str):
    d = tls_certs.dir
    key, csr, pem = tmp_path / "new.key", tmp_path / "new.csr", tmp_path / "new.pem"
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(tls_certs.ca), "-CAkey",
                    str(d / "ca.key"), "-set_serial", serial, "-days", "2", "-out", str(pem),
                    "-extfile", str(d / "server.ext")], check=True, capture_output=True, timeout=30)
    return pem, key


@pytest.mark.timeout(60)
def test_sighup_rotates_certificates_without_dropping_connections(daemon, tmp_path, tls_certs):
    cfg, ports = _config(tmp_path, tls_certs)
    d = daemon(cfg)

    def serial(sock) -> int:
        pem = ssl.DER_cert_to_PEM_cert(sock.getpeercert(binary_form=True))
        out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return int(out.split("=")[1], 16)  # "serial=4D"

    with _tls(tls_certs, ports["tls"]) as old:
        assert serial(old) == 1
        pem, key = _new_server_cert(tls_certs, tmp_path, "77")
        shutil.copy(pem, tmp_path / "server.pem")
        shutil.copy(key, tmp_path / "server.key")
        d.signal(signal.SIGHUP)
        d.wait_log("reloaded")
        with _tls(tls_certs, ports["tls"]) as new:
            assert serial(new) == 77
            assert _echo(new, b"new cert") == b"new cert"
        assert _echo(old, b"still here") == b"still here"  # the old session goes on
    # A broken certificate on reload: logged, the running one stays.
    (tmp_path / "server.key").write_text("garbage\n")
    d.signal(signal.SIGHUP)
    failed = d.wait_log("reload_failed")
    assert f"{cfg.path}:" in failed["error"] and "tls.key" in failed["error"]
    with _tls(tls_certs, ports["tls"]) as again:
        assert serial(again) == 77
    assert stop(d) == 0


@pytest.mark.parametrize("edit, key, message", [
    ({"key": "CLIENT_KEY"}, "listeners[0].tls.key", "does not match the certificate"),
    ({"cert": "MISSING"}, "listeners[0].tls.cert", "cannot read"),
    ({"cert": "JUNK"}, "listeners[0].tls.cert", "is not a PEM file"),
    ({"ca": "MISSING"}, "listeners[1].tls.client_ca", "cannot read"),
])
def test_check_reports_bad_tls_files_at_their_line(tmp_path, tls_certs, edit, key, message):
    (tmp_path / "junk.pem").write_text("hello\n")
    paths = {"CLIENT_KEY": tls_certs.client_key, "MISSING": tmp_path / "missing.pem",
             "JUNK": tmp_path / "junk.pem"}
    cfg, _ = _config(tmp_path, tls_certs, **{k: paths[v] for k, v in edit.items()})
    field = key.rsplit(".", 1)[1]
    value = {"cert": "cert", "key": "key", "client_ca": "ca"}[field]
    needle = f"{field}: {paths[edit[value]]}" if field != "client_ca" else "client_ca:"
    result = run_cli("check", "-c", str(cfg.path))
    assert result.returncode == 2, result.stdout
    line = cfg.line_of(needle) if field != "client_ca" else cfg.line_of("mtls") + 3
    assert result.stderr.startswith(f"{cfg.path}:{line}: {key}: "), result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("extra, key, message", [
    ("    tls: {cert: a.pem, key: a.key}\n", "listeners[0].tls", "does not apply to a datagram"),
    ("    idle_timeout: 5\n", "listeners[0].idle_timeout", "does not apply to a datagram"),
])
def test_check_refuses_stream_keys_on_udp(tmp_path, extra, key, message):
    text = f"listeners:\n  - name: u\n    bind: udp:127.0.0.1:5353\n    service: echo\n{extra}"
    cfg = write_config(tmp_path, text, rewrite=False)
    result = run_cli("check", "-c", str(cfg.path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{cfg.path}:5: {key}: ") and message in result.stderr


def test_check_refuses_a_stream_only_service_on_udp(tmp_path):
    text = "listeners:\n  - name: u\n    bind: udp:127.0.0.1:5353\n    service: discard\n"
    cfg = write_config(tmp_path, text, rewrite=False)
    result = run_cli("check", "-c", str(cfg.path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{cfg.path}:4: listeners[0].service: ")
    assert "does not serve datagrams" in result.stderr


def test_check_refuses_udp_with_several_processes(tmp_path):
    text = ("processes: 2\nlisteners:\n  - name: u\n    bind: udp:127.0.0.1:5353\n"
            "    service: echo\n")
    cfg = write_config(tmp_path, text, rewrite=False)
    result = run_cli("check", "-c", str(cfg.path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{cfg.path}:4: listeners[0].bind: ")
    assert "needs processes: 1" in result.stderr
