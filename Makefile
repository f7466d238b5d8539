# `make run` and `make test` each create .venv when it is missing and install into it.
# PYTHON picks the interpreter; a free-threaded one (python3.13t: Py_GIL_DISABLED) gets its own
# venv, .venv-ft, so `make test PYTHON=python3.13t` never mixes wheels with
# the GIL build's .venv. VENV=DIR overrides the choice.
PYTHON ?= python3
# COMPILE=1: the opt-in compiled build of the hot path (setup.py, REACTORSVC_COMPILE=1), in its
# own venv (.venv-compiled) as a regular, non-editable install: its extensions stay in that venv,
# never in the source tree that .venv's editable install imports from. Its tests run through
# $(VENV)/bin/pytest, since `python -m pytest` would import ./reactorsvc (pure) first.
ifeq ($(COMPILE),1)
export REACTORSVC_COMPILE := 1
VENV ?= .venv-compiled
EDITABLE :=
PYTEST = $(VENV)/bin/pytest
INSTALLED_SOURCES := setup.py $(shell find reactorsvc -name '*.py' -o -name '*.pxd' -o -name '*.yaml')
else
unexport REACTORSVC_COMPILE
EDITABLE := -e
PYTEST = $(PY) -m pytest
endif
PYTEST_ARGS ?=
FREE_THREADED := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED') or 0)" 2>/dev/null)
ifeq ($(FREE_THREADED),1)
VENV ?= .venv-ft
else
VENV ?= .venv
endif
PY := $(VENV)/bin/python

.PHONY: run test bench clean

# `make run` says what it does while it installs (one line a step); pip's own output goes to
# $(PIPLOG), shown only when pip fails.
PIPLOG := $(VENV)/pip.log
PIP := $(PY) -m pip install -q
QUIET = >>$(PIPLOG) 2>&1 || { cat $(PIPLOG); exit 1; }

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || { echo "make: creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing reactorsvc and its dependencies (structlog, PyYAML, httptools) into $(VENV)"
	@: >$(PIPLOG)
	@$(PIP) --upgrade pip $(QUIET)
	@# (COMPILE=1 compiles once, in the [test] step below, which reinstalls the package.)
	@$(if $(EDITABLE),,env -u REACTORSVC_COMPILE) $(PIP) $(EDITABLE) . $(QUIET)
	@touch $@

# COMPILE=1 installs a copy: editing a source reinstalls (and recompiles) it.
$(VENV)/.test-installed: $(VENV)/.installed $(INSTALLED_SOURCES)
	@echo "make: installing the test dependencies (the [test] extra) into $(VENV)$(if $(EDITABLE),, with the compiled hot path)"
	@$(PIP) $(EDITABLE) '.[test]' $(QUIET)
	@touch $@

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]' || true
	touch $@

# The addresses are read from the built-in default config itself, not written again here.
DEFAULT_CONFIG := reactorsvc/daemon/default.yaml
run: $(VENV)/.installed
	@echo "make: starting the daemon (reactorsvc serve) on the built-in default config, binds: $$(sed -n 's/^ *-* *bind: *\([^ #]*\).*/\1/p' $(DEFAULT_CONFIG) | tr '\n' ' ')(Ctrl-C stops it)"
	@$(VENV)/bin/reactorsvc serve

test: $(VENV)/.test-installed
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
	rm -rf .venv .venv-ft .venv-compiled $(VENV) build
