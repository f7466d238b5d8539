# `make run` and `make test` each create .venv when it is missing and install into it.
# PYTHON picks the interpreter; a free-threaded one (python3.13t: Py_GIL_DISABLED) gets its own
# venv, .venv-ft, so `make test PYTHON=$$(../shared/tools/python-ft.sh)` never mixes wheels with
# the GIL build's .venv. VENV=DIR overrides the choice.
PYTHON ?= python3
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
	@echo "make: installing reactorsvc and its dependencies (structlog, PyYAML) into $(VENV)"
	@: >$(PIPLOG)
	@$(PIP) --upgrade pip $(QUIET)
	@$(PIP) -e . $(QUIET)
	@touch $@

# The install builds the compiled hot path in place (setup.py); editing its sources rebuilds it,
# since an extension built from other sources is not used (reactorsvc/_hotpath.py).
HOT_SOURCES := setup.py reactorsvc/_hotpath.py $(wildcard reactorsvc/base/*.py reactorsvc/base/*.pxd)

$(VENV)/.test-installed: $(VENV)/.installed $(HOT_SOURCES)
	@echo "make: installing the test dependencies (the [test] extra) into $(VENV)"
	@$(PIP) -e '.[test]' $(QUIET)
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
	$(PY) -m pytest

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
	rm -rf .venv .venv-ft $(VENV) build
