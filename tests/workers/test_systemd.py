"""systemd socket activation: a listening fd inherited as fd 3 with LISTEN_PID/LISTEN_FDS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from reactorsvc.workers.systemd import listen_fds

CHILD = textwrap.dedent("""
    import asyncio, os, sys
    # systemd places the sockets at fds 3, 4, ...: put the inherited one there.
    os.dup2(int(os.environ.pop("TEST_INHERITED_FD")), 3)
    from reactorsvc import Server
    from reactorsvc.workers.systemd import listen_fds

    class Echo(asyncio.Protocol):
        def connection_made(self, t): self.t = t
        def data_received(self, d):
            self.t.write(d)
            if d == b"stop": server.stop(0)

    socks = listen_fds()
    assert "LISTEN_FDS" not in os.environ
    server = Server(Echo, sockets=socks, workers=2)
    server.start()
    print(server.addresses[0][1], flush=True)
    server.wait_stopped(20)
""")


@pytest.mark.timeout(30)
def test_a_server_serves_the_socket_systemd_passed():
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    # sh sets LISTEN_PID to its own pid, which exec hands on to python (as systemd does).
    cmd = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -c "$1"', sys.executable, CHILD]
    env = dict(os.environ, TEST_INHERITED_FD=str(lsock.fileno()))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env,
                          pass_fds=(lsock.fileno(),)) as child:
        lsock.close()
        try:
            # structlog, unconfigured in this child, prints its lines to stdout too.
            line = child.stdout.readline()
            while line and not line.strip().isdigit():
                line = child.stdout.readline()
            assert int(line) == port
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(b"hello")
                assert c.recv(100) == b"hello"
                c.sendall(b"stop")
            assert child.wait(20) == 0
        finally:
            child.kill()
            child.stdout.close()


def test_no_sockets_without_the_variables(monkeypatch):
    monkeypatch.delenv("LISTEN_PID", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    assert listen_fds() == []


def test_sockets_meant_for_another_process_are_not_taken(monkeypatch):
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert listen_fds() == []
    assert "LISTEN_FDS" not in os.environ


def test_malformed_variables_are_an_error(monkeypatch):
    monkeypatch.setenv("LISTEN_PID", "me")
    monkeypatch.setenv("LISTEN_FDS", "1")
    with pytest.raises(ValueError, match="LISTEN_PID"):
        listen_fds()


@pytest.mark.timeout(30)
def test_systemd_resolves_after_import_reactorsvc_alone():
    """The README writes `reactorsvc.workers.systemd.listen_fds()` after `import reactorsvc`."""
    code = "import reactorsvc; print(reactorsvc.workers.systemd.listen_fds())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("LISTEN_PID", "LISTEN_FDS")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"
