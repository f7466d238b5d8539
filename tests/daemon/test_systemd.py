"""systemd integration, with real sockets: the notify protocol (a real AF_UNIX datagram socket
as NOTIFY_SOCKET: READY=1 once serving, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
SIGHUP, STOPPING=1 on SIGTERM), socket activation (a socket bound by the test, passed as fd 3
with LISTEN_FDS/LISTEN_PID, served without binding), for one process and for a master."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest

from ..helpers import http_get, wait_for
from .conftest import stop, write_config

pytestmark = pytest.mark.timeout(60)

CONFIG = """\
processes: {processes}
workers: 1
listeners:
  - name: http
    bind: 127.0.0.1:1
    service: http-hello
admin:
  bind: 127.0.0.1:1
shutdown:
  grace: 2
"""


# What systemd does before exec: the socket at fd 3, LISTEN_PID = the pid that execs.
_ACTIVATE = """\
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.argv[2], sys.argv[2:])
"""


class NotifySocket:
    """The service manager's end: a bound AF_UNIX datagram socket collecting messages."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def wait(self, key: str, timeout: float = 15.0) -> dict[str, str]:
        """The first message not yet returned that sets ``key``."""
        def poll():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                data = None
            except socket.timeout:
                data = None
            if data is not None:
                self.messages.append(dict(line.split("=", 1) for line in data.decode().split("\n")))
            for i, msg in enumerate(self.messages):
                if key in msg:
                    del self.messages[: i + 1]
                    return msg
            return None
        return wait_for(poll, timeout, f"a notify message with {key}", interval=0)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    ns = NotifySocket(tmp_path / "notify")
    yield ns
    ns.close()


@pytest.mark.parametrize("processes", [1, 2])
def test_notify_protocol(daemon, tmp_path, notify_socket, processes):
    cfg = write_config(tmp_path, CONFIG.format(processes=processes))
    d = daemon(cfg, env={"NOTIFY_SOCKET": notify_socket.path})
    assert notify_socket.wait("READY")["READY"] == "1"
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    d.signal(signal.SIGHUP)
    reloading = notify_socket.wait("RELOADING")
    assert reloading["RELOADING"] == "1"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notify_socket.wait("READY")["READY"] == "1"
    d.signal(signal.SIGTERM)
    assert notify_socket.wait("STOPPING")["STOPPING"] == "1"
    assert d.wait(15) == 0


@pytest.mark.parametrize("processes", [1, 2])
def test_socket_activation(daemon, tmp_path, processes):
    cfg = write_config(tmp_path, CONFIG.format(processes=processes))
    address = cfg.listeners["http"]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(16)
    # systemd's contract: the sockets from fd 3 on, LISTEN_PID the service's own pid.
    wrapper = [sys.executable, "-c", _ACTIVATE, str(sock.fileno())]
    try:
        d = daemon(cfg, pass_fds=(sock.fileno(),), wrapper=wrapper)
    finally:
        sock.close()  # the daemon has its own copy now
    inherited = d.wait_log("listener_inherited", listener="http")
    assert inherited["fds"] == [3]
    assert http_get(address, "/") == (200, b"Hello, world!\n")
    assert not d.events("inherited_socket_unused")
    assert stop(d) == 0
