"""On a free-threaded build (3.13t), importing reactorsvc and every dependency it declares leaves
the GIL disabled: a C extension without free-threading support silently re-enables it (with a
RuntimeWarning) on import, and every worker thread would then take turns again.

A fresh interpreter, with PYTHON_GIL removed from its environment (PYTHON_GIL=0 would force the
GIL off and hide such an extension), imports every reactorsvc module and every installed
distribution pyproject.toml lists (optional extras too), then reports sys._is_gil_enabled().
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

pytestmark = pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"),
                                reason="a GIL build: there is no GIL to keep disabled")

_PROBE = r"""
import importlib, importlib.metadata, importlib.util, json, pkgutil, re, sys, tomllib, warnings
warnings.simplefilter("always")
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
reqs = list(project["dependencies"])
for extra in project.get("optional-dependencies", {}).values():
    reqs += extra
dists = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower().replace("_", "-") for r in reqs}
tops = {}
for top, owners in importlib.metadata.packages_distributions().items():
    for owner in owners:
        tops.setdefault(owner.lower().replace("_", "-"), []).append(top)
imported, missing = [], []
with warnings.catch_warnings(record=True) as caught:
    import reactorsvc
    for mod in pkgutil.walk_packages(reactorsvc.__path__, "reactorsvc."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
            imported.append(mod.name)
    for dist in sorted(dists):
        names = [t for t in tops.get(dist, []) if not t.startswith("_") and t.isidentifier()]
        if not names:
            missing.append(dist)  # not installed here: nothing to load
        for name in names:
            importlib.import_module(name)
            imported.append(name)
    if importlib.util.find_spec("yaml._yaml") is not None:  # PyYAML's libyaml binding
        importlib.import_module("yaml._yaml")
        imported.append("yaml._yaml")
print(json.dumps({"gil": sys._is_gil_enabled(), "imported": imported, "missing": missing,
                  "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.timeout(60)
def test_imports_leave_the_gil_disabled():
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(PYPROJECT)], capture_output=True,
                          text=True, timeout=50, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert "reactorsvc.daemon.app" in report["imported"] and "structlog" in report["imported"]
    assert "yaml" in report["imported"]
    assert report["gil"] is False, (
        f"the GIL was re-enabled by an import; warnings: {report['warnings']}")
