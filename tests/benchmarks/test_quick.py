"""The benchmarks still run (their --quick mode), so they cannot rot unnoticed.

They are scripts, never imported: each runs in a subprocess. Their figures are not checked
(speed is measured, not asserted); only that they finish and print their tables.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script, expect", [
    ("chain.py", "reactorsvc"),
    ("crossthread.py", "call_soon_threadsafe"),
])
def test_benchmark_quick_run(script, expect):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True,
                          text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expect in proc.stdout
