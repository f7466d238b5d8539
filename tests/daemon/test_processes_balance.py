"""`processes: 2` on one shared listening socket: every connection is taken, and both children
take their share (io/balance.py), counted per child by the master's /metrics `process` label.
"""

from __future__ import annotations

import pytest

from ..helpers import connect, echo_roundtrip, metrics, wait_for
from .conftest import stop
from .test_processes import start

pytestmark = pytest.mark.timeout(60)

CONFIG = """\
processes: 2
workers: 1
listeners:
  - name: echo
    bind: 127.0.0.1:1
    service: echo
admin:
  bind: 127.0.0.1:1
"""


def accepts_per_child(admin: tuple, total: int) -> dict[str, float]:
    """{process label: connections it accepted on `echo`}, once the master's figures (asked
    of the children every 0.5 s) add up to `total`."""
    def per_child():
        _, samples = metrics(admin)
        found = {dict(lbl)["process"]: v for (n, lbl), v in samples.items()
                 if n == "reactorsvc_accepts_total" and dict(lbl).get("listener") == "echo"}
        return found if len(found) == 2 and sum(found.values()) == total else None
    return wait_for(per_child, 10, f"both children's accepts adding up to {total}")


def test_fifty_connections_at_once_are_all_served_by_both(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path, text=CONFIG)
    socks = [connect(cfg.listeners["echo"]) for _ in range(50)]   # all in the queue at once
    try:
        for i, s in enumerate(socks):
            assert echo_roundtrip(s, b"%d" % i) == b"%d" % i
        counts = accepts_per_child(cfg.admin, 50)
        # Each child defers while it holds 2 more than the other (up to 50 ms), so the split
        # is near 25/25; the bound leaves room for a child starved of CPU on a loaded machine.
        assert min(counts.values()) >= 10, counts
    finally:
        for s in socks:
            s.close()
    assert stop(d) == 0


def test_connections_one_at_a_time_go_to_both_children(daemon, tmp_path):
    cfg, d, kids = start(daemon, tmp_path, text=CONFIG)
    socks = []
    try:
        for i in range(20):   # kept open: each child's count is what it holds
            socks.append(connect(cfg.listeners["echo"]))
            assert echo_roundtrip(socks[-1], b"x") == b"x"
        counts = accepts_per_child(cfg.admin, 20)
        assert min(counts.values()) >= 4, counts
    finally:
        for s in socks:
            s.close()
    assert stop(d) == 0
