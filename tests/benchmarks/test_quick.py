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
    ("http_parsers.py", "CL 2^64+5"),
    ("http_profile.py", "http-hello protocol alone"),
    ("scaling.py", "2 producers -> 1 loop"),
])
def test_benchmark_quick_run(script, expect):
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True,
                          text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expect in proc.stdout


@pytest.mark.timeout(90)
def test_tls_udp_quick_run():
    """benchmarks/tls_udp.py's servers and clients, TLS ping-pong and UDP echo (needs openssl)."""
    proc = subprocess.run([sys.executable, str(BENCH / "tls_udp.py"), "--quick", "--secs", "0.2",
                           "--only", "tls-pp64", "udp64"], capture_output=True, text=True,
                          timeout=80)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tls-pp64" in proc.stdout and "udp64" in proc.stdout and "asyncio" in proc.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["chain", "chain-nolock", "floor", "active-nolock", "timers"])
def test_icount_cases_run_without_valgrind(case):
    """icount.py's cases themselves (its --run mode, what it runs under callgrind)."""
    proc = subprocess.run([sys.executable, str(BENCH / "icount.py"), "--run", case, "200"],
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_icount_rejects_an_unknown_case():
    proc = subprocess.run([sys.executable, str(BENCH / "icount.py"), "chian"],
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 1 and "unknown case(s) ['chian']" in proc.stderr
