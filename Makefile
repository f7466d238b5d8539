# `make run` and `make test` each create .venv when it is missing and install into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]' || true
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/reactorsvc serve

test: $(VENV)/.test-installed
	$(PY) -m pytest

bench: $(VENV)/.bench-installed build/loadgen
	$(PY) benchmarks/chain.py
	$(PY) benchmarks/crossthread.py
	$(PY) benchmarks/echo.py

build/loadgen: ../shared/bench/loadgen.c
	mkdir -p build
	gcc -O2 -Wall -o $@ $<

clean:
	rm -rf $(VENV) build
