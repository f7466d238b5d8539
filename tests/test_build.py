"""The two builds of the hot path (reactorsvc/_hotpath.py, setup.py): which one runs, and that a
failed compile or a stale extension falls back to the pure modules instead of breaking."""

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
PURE = os.environ.get("REACTORSVC_PURE") == "1"


def _compiler_present() -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def _is_extension(module: str) -> bool:
    return isinstance(sys.modules[module].__loader__, importlib.machinery.ExtensionFileLoader)


def _probe(env_extra: dict, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    """A fresh interpreter: print COMPILED and whether each hot module is an extension."""
    env = {k: v for k, v in os.environ.items() if k != "REACTORSVC_PURE"}
    env.update(env_extra)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = ("import importlib.machinery as m, sys, reactorsvc; from reactorsvc._hotpath import HOT_MODULES; "
            "print(reactorsvc.COMPILED, [isinstance(sys.modules[n].__loader__, m.ExtensionFileLoader) "
            "for n in HOT_MODULES])")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=30, check=True)


@pytest.mark.timeout(10)
def test_compiled_matches_the_environment():
    # The pass under REACTORSVC_PURE=1 runs pure; any other pass on a machine with a C compiler
    # runs the compiled build (make test / .ci/run install it): a silent fallback fails here.
    expected = not PURE and _compiler_present()
    assert reactorsvc.COMPILED is expected, (
        f"COMPILED is {reactorsvc.COMPILED}, REACTORSVC_PURE={os.environ.get('REACTORSVC_PURE')!r}, "
        f"compiler present: {_compiler_present()}; why pure: {_hotpath.pure_reason}")
    assert [_is_extension(m) for m in _hotpath.HOT_MODULES] == [expected] * len(_hotpath.HOT_MODULES)
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert not sys._is_gil_enabled(), "importing reactorsvc re-enabled the GIL"


@pytest.mark.timeout(30)
def test_pure_env_forces_the_pure_modules_and_only_it():
    n = len(_hotpath.HOT_MODULES)
    assert _probe({"REACTORSVC_PURE": "1"}).stdout.strip() == f"False {[False] * n}"
    compiled = _compiler_present()  # the same install, without the variable
    assert _probe({}).stdout.strip() == f"{compiled} {[compiled] * n}"


@pytest.mark.timeout(30)
def test_an_extension_built_from_other_sources_is_not_used(tmp_path):
    if not all(_hotpath.extension_path(m) for m in _hotpath.HOT_MODULES):
        pytest.skip("no compiled build installed here")
    shutil.copytree(os.path.join(ROOT, "reactorsvc"), tmp_path / "reactorsvc",
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    assert _hotpath.unusable_build(str(tmp_path)) == (None, False)  # a faithful copy: compiled
    with open(tmp_path / "reactorsvc" / "base" / "timers.py", "a", encoding="utf-8") as f:
        f.write("\n# edited after the build\n")
    reason, warn = _hotpath.unusable_build(str(tmp_path))
    assert warn and reason.startswith("the compiled timers were built from other sources"), reason
    assert "reinstall" in reason
    shutil.copy(os.path.join(ROOT, "reactorsvc", "base", "timers.py"), tmp_path / "reactorsvc" / "base")
    os.remove(_hotpath.extension_path("reactorsvc.base.evmap", str(tmp_path)))
    assert _hotpath.unusable_build(str(tmp_path)) == ("no compiled extension for reactorsvc.base.evmap", False)


@pytest.mark.timeout(60)
def test_a_failed_compile_installs_the_pure_build_with_one_warning(tmp_path):
    for tool in ("Cython", "setuptools"):  # the test extra brings Cython; venvs >= 3.12 lack setuptools
        if importlib.util.find_spec(tool) is None:
            pytest.skip(f"{tool} is not installed in this environment")
    env = {**os.environ, "CC": "false"}  # a compiler that fails every compile
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
                           "--build-temp", str(tmp_path / "tmp")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("WARNING: reactorsvc: the compiled hot path was not built") == 1, proc.stderr
    lib = tmp_path / "lib"
    assert [p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()] == [_hotpath.FAILED_MARKER]
    # The installed tree runs pure and says why at import, once.
    shutil.copytree(os.path.join(ROOT, "reactorsvc"), lib / "reactorsvc", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "_build_failed.txt"))
    reason, warn = _hotpath.unusable_build(str(lib))
    assert warn and reason.startswith("the compiled build failed when reactorsvc was installed ("), reason
