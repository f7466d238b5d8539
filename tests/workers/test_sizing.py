"""`workers: auto` follows the running interpreter (reactorsvc/workers/sizing.py): one worker
per usable CPU when the GIL is off, 1 with a GIL. On a free-threaded build, the same
interpreter is run with the GIL forced on and off (-X gil=1 / -X gil=0)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

from reactorsvc.daemon.config import load_config_text
from reactorsvc.workers.sizing import auto_workers, gil_enabled, usable_cpus

from ..helpers import subprocess_env

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
_PROBE = ("import sys\nfrom reactorsvc.daemon.config import load_config_text\n"
          "cfg = load_config_text('workers: auto\\nlisteners: [{name: a, bind: \"127.0.0.1:7000\", "
          "service: echo}]\\n')\nprint(sys._is_gil_enabled(), cfg.workers)")


def test_usable_cpus_is_the_affinity_mask():
    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_auto_in_this_interpreter():
    cfg = load_config_text("workers: auto\nlisteners: [{name: a, bind: '127.0.0.1:7000', service: echo}]\n")
    assert cfg.workers == (1 if gil_enabled() else usable_cpus())
    assert auto_workers(1) == 1


@pytest.mark.skipif(FREE_THREADED, reason="a free-threaded build: covered by the -X gil cases")
def test_gil_build_auto_is_one_worker():
    assert gil_enabled() and auto_workers(256) == 1


@pytest.mark.skipif(not FREE_THREADED, reason="-X gil exists on free-threaded builds only")
@pytest.mark.parametrize("gil, expected", [("1", "True 1"), ("0", f"False {usable_cpus()}")])
def test_free_threaded_auto_follows_the_gil(gil, expected):
    env = subprocess_env()
    env.pop("PYTHON_GIL", None)
    out = subprocess.run([sys.executable, "-X", f"gil={gil}", "-c", _PROBE], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected.split()
