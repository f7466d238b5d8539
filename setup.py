"""The compiled build of the hot path (reactorsvc/_hotpath.py says how a build is chosen).

pyproject.toml holds the project's metadata; this file only adds the Cython extensions. By
default `pip install .` compiles them when a C compiler is present: Cython, a build requirement
of that build only (`setup_requires`, which setuptools' PEP 517 backend hands to pip), compiles
the very .py files of the pure build (Cython's pure-Python mode; the types are in the .pxd
files beside them), so both builds have one source. `REACTORSVC_COMPILE=0` at install time
installs the pure modules only: no Cython, no extensions, no warning. Without a C compiler, or
if Cython or the compile fails, the install goes on with the pure modules and one warning says
so: a failed compile never fails the install.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext

_HERE = os.path.dirname(os.path.abspath(__file__))
# reactorsvc/_hotpath.py by path: importing the package would need its dependencies installed.
_spec = importlib.util.spec_from_file_location("_reactorsvc_hotpath", os.path.join(_HERE, "reactorsvc", "_hotpath.py"))
hotpath = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hotpath)

def _c_compiler() -> str | None:
    """The C compiler build_ext would run (CC, else Python's own), if it is on this machine."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    return shutil.which(cc[0]) if cc else None


def _wants_compile() -> bool:
    if os.environ.get("REACTORSVC_COMPILE") == "0":
        return False
    if _c_compiler() is None:
        if "egg_info" not in sys.argv:  # said once, by the build itself, not by pip's probe
            _warn("no C compiler: set CC, or install gcc")
        return False
    return True


_CYTHON = "Cython>=3.1"

_DIRECTIVES = {
    "language_level": 3,
    # Declares the module safe without the GIL, so importing it on free-threaded CPython does
    # not turn the GIL back on. It is: the modules keep their pure-Python semantics (no nogil
    # blocks), and the base's RLock guards what it guards in both builds.
    "freethreading_compatible": True,
    "binding": True,            # functions keep introspection (signatures, __qualname__)
    # Annotations are hints for readers and checkers, never C types: with them, Cython would
    # trust `fd: int` and compile `type(fd) is not int` away, so 3.0 would pass as an fd.
    # Types that change code go in .pxd files, where they are explicit.
    "annotation_typing": False,
}


def _warn(reason: str) -> None:
    print(f"WARNING: reactorsvc: the compiled hot path was not built ({reason}); installing the pure "
          "Python modules only (same behaviour, slower). With a C compiler and Cython>=3.1, "
          "reinstall to get the compiled build.", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext whose failure leaves a working pure install and one warning; each built
    extension gets a `.sha256` file naming the source it was compiled from."""

    def run(self) -> None:
        in_place = self.inplace  # setuptools builds in build_lib, then copies the .so back
        try:
            super().run()
        except Exception as exc:  # no compiler, a compile error: fall back to pure
            reason = f"{type(exc).__name__}: {exc}"
            _warn(reason)
            # All or nothing: reactorsvc/_hotpath.py runs pure when any extension is missing,
            # and a leftover one would only mislead.
            for ext in self.extensions:
                built = [self._built_path(ext)] + ([self._source_tree_path(ext)] if in_place else [])
                for path in (p + tail for p in built for tail in ("", ".sha256")):
                    if os.path.exists(path):
                        os.remove(path)
            # pip shows a successful build's output only with -v: the installed package says
            # why it runs pure, once per process, at import (reactorsvc/_hotpath.py).
            for root in [self.build_lib] + ([_HERE] if in_place else []):
                path = os.path.join(root, hotpath.FAILED_MARKER)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(reason.replace("\n", " ")[:500] + "\n")
            return
        for root in [self.build_lib] + ([_HERE] if in_place else []):
            if os.path.exists(os.path.join(root, hotpath.FAILED_MARKER)):
                os.remove(os.path.join(root, hotpath.FAILED_MARKER))
        if in_place:  # an editable install: the digests go beside the copied-back extensions
            for ext in self.extensions:
                self.copy_file(self._built_path(ext) + ".sha256", self._source_tree_path(ext) + ".sha256")

    def build_extension(self, ext) -> None:
        super().build_extension(ext)
        with open(self._built_path(ext) + ".sha256", "w", encoding="ascii") as f:
            f.write(hotpath.source_digest(hotpath.source_path(ext.name)) + "\n")

    def _built_path(self, ext) -> str:
        return os.path.join(self.build_lib, self.get_ext_filename(self.get_ext_fullname(ext.name)))

    def _source_tree_path(self, ext) -> str:
        return os.path.join(_HERE, self.get_ext_filename(self.get_ext_fullname(ext.name)))


def _extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if "egg_info" in sys.argv:
            # pip asking for the build requirements (setup_requires below) before it installs
            # Cython for the build itself: nothing is compiled in this step.
            return []
        _warn(f"Cython is not importable: {exc}")
        return []
    sources = [os.path.relpath(hotpath.source_path(name), _HERE) for name in hotpath.HOT_MODULES]
    try:
        return cythonize(sources, compiler_directives=_DIRECTIVES, quiet=True)
    except Exception as exc:  # a Cython error: the pure build still installs
        _warn(f"Cython failed: {exc}")
        return []


COMPILE = _wants_compile()
setup(ext_modules=_extensions() if COMPILE else [], cmdclass={"build_ext": OptionalBuildExt},
      setup_requires=[_CYTHON] if COMPILE else [])
