# `make demo` and `make test` each build or reuse .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints/dev.txt | cksum | cut -d' ' -f1)

.PHONY: demo test lint test-slow venv clean bench-data

$(STAMP): pyproject.toml constraints/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned, so no dependency resolution pulls a multi-GB CUDA build.
	$(PIP) install -q -c constraints/dev.txt torch
	$(PIP) install -q -c constraints/dev.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src/fusionrec

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	$(VENV)/bin/fusionrec demo

clean:
	rm -rf $(VENV) runs .pytest_cache
