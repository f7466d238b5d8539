"""The daemon's log lines stay whole when several processes share one stderr (processes: N)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, subprocess_env

_WRITER = """
import sys, structlog
from reactorsvc.daemon.logging import configure_logging
configure_logging("info", "json")
log = structlog.get_logger("t")
for i in range(300):
    log.info("line", writer=sys.argv[1], i=i, pad="x" * 1500)
"""


@pytest.mark.timeout(60)
def test_lines_of_processes_sharing_stderr_do_not_interleave():
    r, w = os.pipe()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(n)], stderr=w, cwd=REPO,
                                  env=subprocess_env()) for n in range(4)]
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as out:
        data = out.read()
    for p in procs:
        assert p.wait(30) == 0
    lines = data.decode().splitlines()
    assert len(lines) == 4 * 300
    seen = {json.loads(line)["writer"] for line in lines}  # every line parses whole
    assert seen == {"0", "1", "2", "3"}
