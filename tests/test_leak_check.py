"""The suite's leak check (no_leaks in conftest.py) itself: run on a few tests that each leave
one thing behind, in a pytest subprocess with this suite's conftest, it fails each of them
naming what was left."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from .helpers import REPO, subprocess_env

LEAKY = textwrap.dedent('''
    import signal, socket
    import reactorsvc

    kept = []

    def test_base_not_freed():
        kept.append(reactorsvc.EventBase())

    def test_handler_left():
        signal.signal(signal.SIGUSR2, lambda *a: None)

    def test_wakeup_fd_left():
        a, b = socket.socketpair()
        a.setblocking(False)
        kept.append((a, b))
        signal.set_wakeup_fd(a.fileno())

    def test_signal_event_cleans_up():
        with reactorsvc.EventBase() as base:
            ev = reactorsvc.Event.signal(base, signal.SIGUSR1, lambda *a: None)
            ev.add()
            ev.delete()

    def test_clean():
        reactorsvc.EventBase().free()
''')


@pytest.mark.timeout(60)
def test_the_leak_check_names_bases_handlers_and_the_wakeup_fd(tmp_path):
    # Laid out as this suite is (tests/conftest.py beside tests/helpers.py, importlib mode).
    suite = tmp_path / "tests"
    suite.mkdir()
    shutil.copy(REPO / "tests" / "conftest.py", suite / "conftest.py")
    shutil.copy(REPO / "tests" / "helpers.py", suite / "helpers.py")
    (suite / "test_leaky.py").write_text(LEAKY)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--import-mode=importlib", "-W", "error", "tests"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=50, env=subprocess_env())
    out = proc.stdout + proc.stderr
    assert "ERROR at teardown of test_base_not_freed" in out, out
    assert "test left EventBases not freed" in out, out
    assert "ERROR at teardown of test_handler_left" in out, out
    assert "signal handlers changed" in out and "SIGUSR2" in out, out
    assert "ERROR at teardown of test_wakeup_fd_left" in out, out
    assert "test left signal.set_wakeup_fd at" in out, out
    assert "5 passed, 3 errors" in out, out
