"""The stress harness: a short run per backend in-process and once through the command line,
its argument checking, its seeded choices, and that its bookkeeping and watchdog do catch
what they are meant to catch."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import reactorsvc
from reactorsvc import EV_TIMEOUT, EVLOOP_ONCE
from reactorsvc.stress import main, run_stress
from reactorsvc.stress.bases import make_base
from reactorsvc.stress.hammer import OPS, choices
from reactorsvc.stress.model import (
    ARMED,
    DELETED,
    IDLE,
    MAYBE,
    EventRecord,
    LoopOwner,
    Violations,
    on_event,
)
from reactorsvc.stress.watchdog import Watchdog, dump_all_threads

from ..helpers import subprocess_env

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(40)
def test_a_short_run_finds_no_violation(method):
    out = io.StringIO()
    report = run_stress(threads=4, bases=2, seconds=2.0, seed=1234, backend=method, out=out)
    text = out.getvalue()
    assert report.ok, text
    assert report.backend == method
    assert set(report.op_counts) == set(OPS) and all(report.op_counts.values())
    assert report.operations == sum(report.op_counts.values())
    assert report.posts == report.delivered == report.op_counts["post"]
    assert report.owed["fired"] > 0 and report.owed["cancelled"] > 0
    assert report.loop_restarts > 0 and report.wakeups_sent > 0 and report.callbacks > 0
    lines = text.splitlines()
    progress = [line.split("]")[0] for line in lines if line.startswith("[")]
    assert 1 <= len(progress) <= 2 and progress[-1] == "[  2s"  # one a second
    assert f"stress: backend={method} threads=4 bases=2 seconds=2 seed=1234" in lines
    assert lines[-1] == "violations: 0"


@pytest.mark.timeout(40)
def test_the_command_line_runs_as_a_module_and_exits_0():
    env = subprocess_env()
    proc = subprocess.run(
        [sys.executable, "-m", "reactorsvc.stress", "--threads", "2", "--bases", "1",
         "--seconds", "1", "--seed", "7", "--backend", reactorsvc.supported_methods()[0]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("[  1s] ops=")
    assert proc.stdout.rstrip().endswith("violations: 0")


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "argument --threads: must be >= 1, got 0"),
    (["--bases", "two"], "argument --bases: 'two' is not an integer"),
    (["--seconds", "-1"], "argument --seconds: must be a finite number > 0, got -1"),
    (["--seed", "1.5"], "argument --seed: '1.5' is not an integer"),
    (["--backend", "nope"], "--backend: 'nope' is not available here"),
])
def test_main_rejects_bad_arguments_with_status_2(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, error, message", [
    ({"threads": 0}, ValueError, "threads must be at least 1, got 0"),
    ({"bases": 1.0}, TypeError, "bases must be an int, not float"),
    ({"seconds": 0}, ValueError, "seconds must be a finite number of seconds > 0, got 0"),
    ({"seed": "1"}, TypeError, "seed must be an int, not str"),
    ({"backend": "nope"}, ValueError, "backend 'nope' is not available here"),
])
def test_run_stress_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        run_stress(**kwargs, out=io.StringIO())


def test_the_same_seed_makes_the_same_choices():
    first = choices(seed=42, index=1, nbases=3, n=500)
    assert first == choices(seed=42, index=1, nbases=3, n=500)
    assert first != choices(seed=43, index=1, nbases=3, n=500)
    assert first == choices(seed=43, index=0, nbases=3, n=500)  # hammer i uses Random(seed + i)
    assert {c.op for c in first} == set(OPS)


# -- the bookkeeping catches what it is meant to catch -------------------------------------

@pytest.fixture
def record():
    """An EventRecord on a timer of a base looped in this thread."""
    base = make_base(None)
    owner = LoopOwner()
    owner.ident = threading.get_ident()
    rec = EventRecord("t", "timer", owner, Violations())
    rec.ev = reactorsvc.Event.timer(base, on_event, rec)
    yield rec, base
    base.free()


def test_bookkeeping_follows_add_fire_and_nonblocking_delete(record):
    rec, base = record
    rec.add(0)
    assert rec.state == ARMED
    base.loop(EVLOOP_ONCE)
    assert rec.state == IDLE
    rec.add(10)
    rec.delete_nonblocking()
    assert rec.state == MAYBE
    rec.activate(EV_TIMEOUT)
    base.loop(EVLOOP_ONCE)
    assert (rec.state, dict(rec.tally)) == (IDLE, {"armed": 3, "fired": 2, "cancelled": 1})
    assert rec.violations.total == 0


def test_bookkeeping_sees_a_rearm_after_dequeue_as_a_second_owed_run(record):
    rec, base = record
    real = rec.ev

    def rearm_then_fire(fd, what, arg):
        rec.add(0)  # after the loop dequeued the event, before the callback consumed its run
        rec.fired(what)

    rec.ev = reactorsvc.Event.timer(base, rearm_then_fire)
    rec.add(0)
    base.loop(EVLOOP_ONCE)
    assert (rec.state, rec.tally["refired"]) == (ARMED, 1)
    rec.ev.delete()
    rec.ev = real


@pytest.mark.parametrize("setup, kind", [
    (lambda rec: None, "unowed-run"),
    (lambda rec: (rec.add(0), rec.delete_blocking()), "after-delete"),
])
def test_bookkeeping_flags_a_run_that_was_not_owed(record, setup, kind):
    rec, _base = record
    setup(rec)
    rec.fired(EV_TIMEOUT)  # as if the reactor had run the callback
    assert dict(rec.violations.counts) == {kind: 1}
    assert rec.state in (IDLE, DELETED)


def test_bookkeeping_flags_a_callback_in_the_wrong_thread(record):
    rec, _base = record
    rec.add(0)
    t = threading.Thread(target=rec.fired, args=(EV_TIMEOUT,))
    t.start()
    t.join(5)
    assert dict(rec.violations.counts) == {"wrong-thread": 1}


def test_watchdog_names_only_the_counter_that_stood_still():
    dog = Watchdog(stall=5.0)
    assert dog.check({"a": 0, "b": 0}, now=100.0) == []
    assert dog.check({"a": 1, "b": 0}, now=104.0) == []
    assert dog.check({"a": 2, "b": 0}, now=105.0) == ["b"]
    assert dog.check({"a": 2, "b": 1}, now=109.9) == []
    assert dog.check({"a": 2, "b": 1}, now=110.0) == ["a"]


def test_watchdog_dump_shows_every_threads_stack(tmp_path):
    release = threading.Event()
    t = threading.Thread(target=release.wait, args=(10,), name="parked")
    t.start()
    try:
        with open(tmp_path / "dump.txt", "w+") as f:
            dump_all_threads(f)
            f.seek(0)
            text = f.read()
    finally:
        release.set()
        t.join(5)
    assert text.count("most recent call first") >= 2  # this thread and the parked one
    assert "in wait" in text
