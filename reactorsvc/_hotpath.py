"""Which build of the hot path runs: the compiled extension modules or the pure Python ones.

The hot modules exist twice side by side: `eventbase.py` and, when `pip install` had a C
compiler, `eventbase.cpython-311-x86_64-linux-gnu.so` compiled from that same file by Cython
(setup.py). Python's import system prefers the .so. `select()` runs once, first thing when
`reactorsvc` is imported, before any hot module is, and decides for all of them together
(compiled modules may rely on each other's compiled form, so the builds are never mixed):

- `REACTORSVC_PURE=1` in the environment: pure;
- the install's compile failed (setup.py left `_build_failed.txt` saying why): pure, and one
  warning per process saying why (pip shows the build's own warning only with -v);
- any hot module without an extension for this interpreter: pure, silently (an interpreter
  the package was not built for);
- any extension built from a different source than the .py beside it (the source was edited
  or updated since the build; each build records its sources' SHA-256 in a `.sha256` file
  beside the extension): pure, and one warning saying to rebuild; running stale compiled
  code would test something other than the source;
- otherwise compiled.

"Pure" installs a meta-path finder that loads each hot module from its .py file. Imports only
the standard library: setup.py reads HOT_MODULES from here before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings

# The modules compiled when a compiler is present; setup.py builds exactly these.
HOT_MODULES = (
    "reactorsvc.base.eventbase",
    "reactorsvc.base.core",
    "reactorsvc.base.dispatch",
    "reactorsvc.base.event",
    "reactorsvc.base.timers",
    "reactorsvc.base.evmap",
    "reactorsvc.base.notify",
    "reactorsvc.base.lock",
    "reactorsvc.io.state",
    "reactorsvc.io.writing",
    "reactorsvc.io.reading",
)

# Written by setup.py when the compile failed (pip hides a build's output): why, in one line.
FAILED_MARKER = os.path.join("reactorsvc", "_build_failed.txt")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds reactorsvc/


def source_path(module: str, root: str = _ROOT) -> str:
    """The .py file of a hot module (in the tree at `root`)."""
    return os.path.join(root, *module.split(".")) + ".py"


def source_digest(path: str) -> str:
    """What a build records about its source (setup.py writes it, select() compares it): the
    .py file and the .pxd beside it, if any (its types change the compiled code)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read())
    try:
        with open(path[:-3] + ".pxd", "rb") as f:
            digest.update(b"\0pxd\0" + f.read())
    except FileNotFoundError:
        pass
    return digest.hexdigest()


def extension_path(module: str, root: str = _ROOT) -> str | None:
    """The extension of a hot module built for this interpreter, or None."""
    stem = os.path.join(root, *module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(stem + suffix):
            return stem + suffix
    return None


def unusable_build(root: str = _ROOT) -> tuple[str | None, bool]:
    """(why the compiled build at `root` cannot run, whether that deserves a warning), or
    (None, False) when every hot module has an extension built from the .py beside it."""
    try:
        with open(os.path.join(root, FAILED_MARKER), encoding="utf-8") as f:
            return (f"the compiled build failed when reactorsvc was installed ({f.read().strip()}); "
                    "reinstall with a C compiler, or set REACTORSVC_PURE=1 to choose the pure build"), True
    except OSError:
        pass
    stale = []
    for module in HOT_MODULES:
        ext = extension_path(module, root)
        if ext is None:
            return f"no compiled extension for {module}", False
        try:
            with open(ext + ".sha256", encoding="ascii") as f:
                recorded = f.read().strip()
        except OSError:
            recorded = ""
        if recorded != source_digest(source_path(module, root)):
            stale.append(module.rsplit(".", 1)[1])
    if stale:
        return (f"the compiled {', '.join(stale)} were built from other sources than the .py files "
                f"beside them; reinstall (pip install -e .) to rebuild"), True
    return None, False


pure_reason: str | None = None  # why select() chose the pure modules (None: compiled or not yet)


class _PureFinder:
    """Loads the hot modules from their .py files, shadowing the extensions."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None):
        if name not in HOT_MODULES:
            return None
        return importlib.util.spec_from_file_location(name, source_path(name))


def select() -> bool:
    """Decide once per process which build runs; True when it is the compiled one."""
    if any(module in sys.modules for module in HOT_MODULES):
        # Imported already (a reload of reactorsvc, say): keep what runs.
        return all(not sys.modules[m].__file__.endswith(".py") for m in HOT_MODULES if m in sys.modules)
    global pure_reason
    if os.environ.get("REACTORSVC_PURE") == "1":
        reason, warn = "REACTORSVC_PURE=1", False
    else:
        reason, warn = unusable_build()
    pure_reason = reason
    if reason is None:
        return True
    if warn:
        warnings.warn(f"reactorsvc: running the pure Python hot path: {reason}", RuntimeWarning, stacklevel=3)
    if not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())
    return False
