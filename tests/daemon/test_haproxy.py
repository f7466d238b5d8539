"""The real HAProxy (configs/haproxy.cfg, ports moved) in front of two daemons, each restarted
in turn under keep-alive client load: 0 failed requests, 0 refused connections. A daemon told to
stop turns /healthz to 503 and keeps serving for shutdown.health_delay, so HAProxy marks it
DOWN (seen on its stats socket) before it stops accepting; HAProxy marks the new one UP."""

from __future__ import annotations

import csv
import shutil
import signal
import socket
import subprocess

import pytest

from ..helpers import REPO, free_ports, wait_for
from .conftest import write_config
from .httpload import HttpLoad

pytestmark = pytest.mark.timeout(90)

DAEMON = """\
processes: 2
workers: 1
listeners:
  - name: http
    bind: 127.0.0.1:{port}
    service: http-hello
    options:
      body: "from {name}\\n"
admin:
  bind: 127.0.0.1:{admin}
shutdown:
  grace: 1
  health_delay: 1.2
"""


class HAProxy:
    def __init__(self, tmp_path, ports: dict[int, int]) -> None:
        text = (REPO / "configs" / "haproxy.cfg").read_text()
        for old, new in ports.items():
            text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}").replace(
                f"port {old}", f"port {new}")
        self.stats_path = str(tmp_path / "haproxy.sock")
        text = text.replace("/run/haproxy-reactorsvc.sock", self.stats_path)
        path = tmp_path / "haproxy.cfg"
        path.write_text(text)
        self.log = open(tmp_path / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-f", str(path), "-db"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def status(self) -> dict[str, str]:
        """{server name: UP/DOWN/...} from `show stat` on the stats socket ({} until it answers)."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.stats_path)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        rows = list(csv.reader(data.decode().lstrip("# ").splitlines()))
        if not rows:
            return {}
        header = rows[0]
        return {r[1]: r[header.index("status")] for r in rows[1:]
                if len(r) == len(header) and r[0] == "reactorsvc" and r[1] not in ("BACKEND",)}

    def wait_status(self, server: str, status: str, timeout: float = 15.0) -> None:
        wait_for(lambda: self.status().get(server, "").startswith(status), timeout,
                 lambda: f"haproxy to see {server} {status}: {self.status()}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def haproxy_binary():
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (Debian package haproxy; .ci/run installs it)")


def test_rolling_restart_behind_haproxy(haproxy_binary, daemon, tmp_path):
    front, port_a, port_b, admin_a, admin_b = free_ports(5)
    cfgs = {name: write_config(tmp_path, DAEMON.format(port=port, admin=admin, name=name),
                               name=f"{name}.yaml", rewrite=False)
            for name, port, admin in (("a", port_a, admin_a), ("b", port_b, admin_b))}
    daemons = {name: daemon(cfg) for name, cfg in cfgs.items()}
    proxy = HAProxy(tmp_path, {8000: front, 8091: port_a, 8092: port_b, 9191: admin_a,
                               9192: admin_b})
    try:
        proxy.wait_status("a", "UP")
        proxy.wait_status("b", "UP")
        with HttpLoad(("127.0.0.1", front), clients=4, per_connection=10) as load:
            load.wait_ok(50)
            for name in ("a", "b"):
                old = daemons[name]
                old.signal(signal.SIGTERM)
                proxy.wait_status(name, "DOWN")   # during health_delay: it still serves
                assert old.proc.poll() is None, "the daemon stopped before HAProxy moved away"
                assert old.wait(20) == 0
                daemons[name] = daemon(cfgs[name])
                proxy.wait_status(name, "UP")
                load.wait_ok(50)
            served = {body for body in load.bodies}
        assert load.failed == 0, load.failures[:5]
        assert load.refused == 0
        assert served == {b"from a\n", b"from b\n"}
    finally:
        proxy.close()
