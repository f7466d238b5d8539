"""Accept failures reach /metrics: a daemon out of file descriptors (its RLIMIT_NOFILE lowered
with prlimit while it runs) counts EMFILE in reactorsvc_accept_errors_total{reason="resources"}
of the listener it hit, backs off, and serves again once fds are free."""

from __future__ import annotations

import os
import resource
import sys

import pytest

from ..helpers import connect, echo, metrics, wait_for
from .conftest import stop, write_config

CONFIG = """\
workers: 1
listeners:
  - name: tight
    bind: 127.0.0.1:1
    service: echo
admin:
  bind: 127.0.0.1:2
"""
CLIENTS = 8


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit and /proc are Linux's")
def test_emfile_is_counted_as_an_accept_error_of_its_listener(daemon, tmp_path):
    cfg = write_config(tmp_path, CONFIG)
    d = daemon(cfg)
    pid = d.proc.pid
    limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    # Room for two more fds (one more if the readiness probe's is still open): with 8 clients
    # an accept() fails with EMFILE.
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (_fds(pid) + 2, limits[1]))
    clients = []
    try:
        for _ in range(CLIENTS):
            clients.append(connect(cfg.listeners["tight"]))  # the backlog takes the rest
        failed = d.wait_log("accept_failed_backing_off")
        assert "EMFILE" in failed["error"] or "Too many open files" in failed["error"], failed
        echo(clients[0], b"still served")
    finally:
        for c in clients:
            c.close()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)

    def counted():
        _, samples = metrics(cfg.admin)
        tight = (("listener", "tight"), ("reason", "resources"))
        return samples[("reactorsvc_accept_errors_total", tight)] >= 1 and samples
    samples = wait_for(counted, what="an EMFILE counted in /metrics")
    assert samples[("reactorsvc_accept_errors_total",
                    (("listener", "tight"), ("reason", "other")))] == 0
    assert samples[("reactorsvc_accept_pauses_total", (("listener", "tight"),))] >= 1
    with connect(cfg.listeners["tight"]) as s:
        echo(s, b"after")
    assert stop(d) == 0
