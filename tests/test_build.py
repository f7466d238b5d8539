"""The two builds of the hot path (reactorsvc/_hotpath.py, setup.py): which one runs, that an
install compiles by default (REACTORSVC_COMPILE=0 at install time opts out), and that a missing
compiler, a failed compile or a stale extension falls back to the pure modules instead of
breaking.

The compiled build itself (a minute or two of compiling) is not built here: `make test`
installs it (non-editable, in .venv) and sets REACTORSVC_COMPILE=1 for pytest too, so the
checks below expect the compiled modules; `make test COMPILE=0` sets 0 and expects pure."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

import reactorsvc
from reactorsvc import _hotpath

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.dirname(os.path.abspath(reactorsvc.__file__))  # the tree in use: ROOT's or an installed copy
PURE = os.environ.get("REACTORSVC_PURE") == "1"
OPTED_IN = os.environ.get("REACTORSVC_COMPILE") != "0"  # make test COMPILE=0 sets it for install and tests


def _compiler_present() -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def _is_extension(module: str) -> bool:
    return isinstance(sys.modules[module].__loader__, importlib.machinery.ExtensionFileLoader)


def _probe(env_extra: dict, cwd: str) -> subprocess.CompletedProcess:
    """A fresh interpreter: print COMPILED and whether each hot module is an extension. `cwd`
    away from ROOT: `python -c` would import ./reactorsvc from there, not the install."""
    env = {k: v for k, v in os.environ.items() if k != "REACTORSVC_PURE"}
    env.update(env_extra)
    code = ("import importlib.machinery as m, sys, reactorsvc; from reactorsvc._hotpath import HOT_MODULES; "
            "print(reactorsvc.COMPILED, [isinstance(sys.modules[n].__loader__, m.ExtensionFileLoader) "
            "for n in HOT_MODULES])")
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=30, check=True)


@pytest.mark.timeout(10)
def test_compiled_matches_the_environment():
    # A default install (make test) on a machine with a C compiler runs the compiled build, an
    # opted-out one (make test COMPILE=0) pure; REACTORSVC_PURE=1 forces pure: a silent fallback fails here.
    expected = OPTED_IN and not PURE and _compiler_present()
    assert reactorsvc.COMPILED is expected, (
        f"COMPILED is {reactorsvc.COMPILED}, REACTORSVC_COMPILE={os.environ.get('REACTORSVC_COMPILE')!r}, "
        f"REACTORSVC_PURE={os.environ.get('REACTORSVC_PURE')!r}, compiler present: {_compiler_present()}; "
        f"why pure: {_hotpath.pure_reason}")
    assert [_is_extension(m) for m in _hotpath.HOT_MODULES] == [expected] * len(_hotpath.HOT_MODULES)
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert not sys._is_gil_enabled(), "importing reactorsvc re-enabled the GIL"


@pytest.mark.timeout(30)
def test_pure_env_forces_the_pure_modules_and_only_it(tmp_path):
    n = len(_hotpath.HOT_MODULES)
    forced = _probe({"REACTORSVC_PURE": "1"}, str(tmp_path))
    assert (forced.stdout.strip(), forced.stderr) == (f"False {[False] * n}", "")
    compiled = OPTED_IN and _compiler_present()  # the same install, without the variable
    plain = _probe({}, str(tmp_path))
    assert (plain.stdout.strip(), plain.stderr) == (f"{compiled} {[compiled] * n}", "")  # no warning either way


@pytest.mark.timeout(30)
def test_an_extension_built_from_other_sources_is_not_used(tmp_path):
    if not all(_hotpath.extension_path(m) for m in _hotpath.HOT_MODULES):
        pytest.skip("no compiled build installed here")
    shutil.copytree(PACKAGE, tmp_path / "reactorsvc", ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    assert _hotpath.unusable_build(str(tmp_path)) == (None, False)  # a faithful copy: compiled
    with open(tmp_path / "reactorsvc" / "base" / "timers.py", "a", encoding="utf-8") as f:
        f.write("\n# edited after the build\n")
    reason, warn = _hotpath.unusable_build(str(tmp_path))
    assert warn and reason.startswith("the compiled timers were built from other sources"), reason
    assert "reinstall" in reason
    shutil.copy(os.path.join(PACKAGE, "base", "timers.py"), tmp_path / "reactorsvc" / "base")
    os.remove(_hotpath.extension_path("reactorsvc.base.evmap", str(tmp_path)))
    assert _hotpath.unusable_build(str(tmp_path)) == ("no compiled extension for reactorsvc.base.evmap", False)


def _build_ext(tmp_path, env_extra: dict) -> subprocess.CompletedProcess:
    """setup.py build_ext of ROOT into tmp_path/lib (what pip's install runs)."""
    if importlib.util.find_spec("setuptools") is None:  # venvs of Python >= 3.12 lack it
        pytest.skip("setuptools is not installed in this environment")
    env = {k: v for k, v in os.environ.items() if k != "REACTORSVC_COMPILE"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
                           "--build-temp", str(tmp_path / "tmp")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=50)


@pytest.mark.timeout(30)
def test_compile_0_builds_nothing_and_says_nothing(tmp_path):
    proc = _build_ext(tmp_path, {"REACTORSVC_COMPILE": "0"})
    assert proc.returncode == 0 and "reactorsvc" not in proc.stderr, proc.stderr  # setuptools may warn of itself
    lib = tmp_path / "lib"
    assert not lib.exists() or [p for p in lib.rglob("*") if p.is_file()] == []


@pytest.mark.timeout(30)
def test_no_compiler_installs_the_pure_build_with_one_warning(tmp_path):
    proc = _build_ext(tmp_path, {"CC": str(tmp_path / "no-such-cc")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("WARNING: reactorsvc: the compiled hot path was not built (no C compiler") == 1, proc.stderr
    lib = tmp_path / "lib"
    assert not lib.exists() or [p for p in lib.rglob("*") if p.is_file()] == []


@pytest.mark.timeout(60)
def test_a_failed_compile_installs_the_pure_build_with_one_warning(tmp_path):
    if importlib.util.find_spec("Cython") is None:  # the test extra brings it
        pytest.skip("Cython is not installed in this environment")
    proc = _build_ext(tmp_path, {"CC": "false"})  # a compiler that fails every compile
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("WARNING: reactorsvc: the compiled hot path was not built") == 1, proc.stderr
    lib = tmp_path / "lib"
    assert [p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()] == [_hotpath.FAILED_MARKER]
    # The installed tree runs pure and says why at import, once.
    shutil.copytree(os.path.join(ROOT, "reactorsvc"), lib / "reactorsvc", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "_build_failed.txt"))
    reason, warn = _hotpath.unusable_build(str(lib))
    assert warn and reason.startswith("the compiled build failed when reactorsvc was installed ("), reason


@pytest.mark.timeout(30)
def test_the_suites_subprocesses_run_the_build_under_test():
    # The daemon tests start `python -m reactorsvc` with the checkout as cwd: with
    # helpers.subprocess_env() it imports the same package, in the same build, as this process.
    from .helpers import subprocess_env

    code = "import reactorsvc; print(reactorsvc.COMPILED, reactorsvc.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=20, check=True).stdout.split()
    assert out == [str(reactorsvc.COMPILED), reactorsvc.__file__]
