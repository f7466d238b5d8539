# `make run` and `make test` each create a venv when it is missing and install into it.
# PYTHON picks the interpreter. COMPILE (default 1) picks the build of the hot path:
# - COMPILE=1: the compiled build (setup.py compiles reactorsvc/base with Cython when a C
#   compiler is present), as a regular, non-editable install in .venv: its extensions stay in
#   the venv, never in the source tree, and editing a source reinstalls (recompiles) on the
#   next `make test`. Its tests run through $(VENV)/bin/pytest, since `python -m pytest` would
#   import ./reactorsvc (pure) first. `REACTORSVC_PURE=1 make test` runs the same venv pure.
# - COMPILE=0: the pure modules as an editable install in .venv-pure (REACTORSVC_COMPILE=0).
# A free-threaded interpreter (python3.13t: Py_GIL_DISABLED) gets its own venvs, .venv-ft and
# .venv-ft-pure, so wheels of the two ABIs never mix. VENV=DIR overrides the choice.
PYTHON ?= python3
COMPILE ?= 1
FREE_THREADED := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED') or 0)" 2>/dev/null)
ifeq ($(COMPILE),1)
export REACTORSVC_COMPILE := 1
EDITABLE :=
PYTEST = $(VENV)/bin/pytest
INSTALLED_SOURCES := setup.py $(shell find reactorsvc -name '*.py' -o -name '*.pxd' -o -name '*.yaml')
VENV_TAIL :=
else
export REACTORSVC_COMPILE := 0
EDITABLE := -e
PYTEST = $(PY) -m pytest
VENV_TAIL := -pure
endif
PYTEST_ARGS ?=
ifeq ($(FREE_THREADED),1)
VENV ?= .venv-ft$(VENV_TAIL)
else
VENV ?= .venv$(VENV_TAIL)
endif
PY := $(VENV)/bin/python

.PHONY: run test bench clean

# `make run` says what it does while it installs (one line a step); pip's own output goes to
# $(PIPLOG), shown only when pip fails.
PIPLOG := $(VENV)/pip.log
PIP := $(PY) -m pip install -q
QUIET = >>$(PIPLOG) 2>&1 || { cat $(PIPLOG); exit 1; }

# The stamps name the build, so a venv made by an older Makefile (an editable pure install in
# .venv) is reinstalled rather than trusted.
$(PY):
	@echo "make: creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@: >$(PIPLOG)
	@$(PIP) --upgrade pip $(QUIET)

$(VENV)/.installed-$(COMPILE): pyproject.toml $(INSTALLED_SOURCES) | $(PY)
	@echo "make: installing reactorsvc and its dependencies (structlog, PyYAML, httptools) into $(VENV)$(if $(EDITABLE),, and compiling its hot path)"
	@$(PIP) $(EDITABLE) . $(QUIET)
	@touch $@

# One install with the test extra (it compiles once, not after a plain install as well);
# COMPILE=1 installs a copy: editing a source reinstalls (and recompiles) it.
$(VENV)/.test-installed-$(COMPILE): pyproject.toml $(INSTALLED_SOURCES) | $(PY)
	@echo "make: installing reactorsvc with the test dependencies (the [test] extra) into $(VENV)$(if $(EDITABLE),, and compiling its hot path)"
	@$(PIP) $(EDITABLE) '.[test]' $(QUIET)
	@touch $@ $(VENV)/.installed-$(COMPILE)

$(VENV)/.bench-installed: $(VENV)/.installed-$(COMPILE)
	$(PY) -m pip install -q $(EDITABLE) '.[bench]' || true
	touch $@

# The addresses are read from the built-in default config itself, not written again here.
DEFAULT_CONFIG := reactorsvc/daemon/default.yaml
run: $(VENV)/.installed-$(COMPILE)
	@echo "make: starting the daemon (reactorsvc serve) on the built-in default config, binds: $$(sed -n 's/^ *-* *bind: *\([^ #]*\).*/\1/p' $(DEFAULT_CONFIG) | tr '\n' ' ')(Ctrl-C stops it)"
	@$(VENV)/bin/reactorsvc serve

test: $(VENV)/.test-installed-$(COMPILE)
	$(PYTEST) $(PYTEST_ARGS)

bench: $(VENV)/.bench-installed build/loadgen
	$(PY) benchmarks/chain.py
	$(PY) benchmarks/crossthread.py
	$(PY) benchmarks/echo.py
	$(PY) benchmarks/processes.py

# The project's own echo load generator (benchmarks/loadgen/, see its README there).
LOADGEN_SRC := benchmarks/loadgen/loadgen.c
build/loadgen: $(LOADGEN_SRC) benchmarks/loadgen/common.h
	mkdir -p build
	gcc -O2 -Wall -o $@ $(LOADGEN_SRC)

clean:
	rm -rf .venv .venv-ft .venv-pure .venv-ft-pure .venv-compiled $(VENV) build
